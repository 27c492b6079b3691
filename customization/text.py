"""The one case folding of the service (DESIGN §2: one case-folding, for every language).

Every case-insensitive comparison, index and uniqueness rule compares values folded here, in
Python; SQL only stores and compares the folded forms with plain `=`, `<`, `LIKE`. PostgreSQL's
own `lower()` is never used for matching: it depends on the database's collation and differs
from Unicode case folding (a final capital sigma becomes 'σ' there and 'ς' in Python's
`lower()`; 'ß' stays 'ß' where case folding gives 'ss').

`fold` is Unicode full case folding of the NFKC form (so 'Ｍüller', 'MÜLLER' and 'müller'
compare equal, as do 'STRASSE' and 'straße'); `fold_unaccented` also drops accents, for `q`.
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """The caseless form of `text`, in NFC."""
    if text.isascii():
        return text.lower()  # ASCII: case folding is lowercasing, and NFKC changes nothing
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).casefold())


def fold_unaccented(text: str) -> str:
    """`fold`, then without combining marks: 'José' → 'jose', 'Müller' → 'muller'."""
    folded = fold(text)
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFD", folded)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


# The indexed prefix of a folded text value (custom values): a B-tree entry must stay well under
# PostgreSQL's ~2.7 kB limit whatever the script, and 64 characters keep equality and prefix
# look-ups selective.
KEY_LENGTH = 64


def text_key(folded: str) -> str:
    return folded[:KEY_LENGTH]


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix`, in code point order
    (PostgreSQL's "C" collation); None when there is none (a prefix of U+10FFFF only)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored: skip to the first code point after them
        last = 0xE000
    return stripped[:-1] + chr(last)
