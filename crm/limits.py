"""The documented caps of the API, in one place: the parsers that enforce them and the OpenAPI
schema that publishes them both read these names (docs/filters.md repeats them for readers)."""

# Pages of every list endpoint and of POST /contacts/search.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**12
COUNT_MODES = ("exact", "estimate", "none")  # the first is the default

# A smart-list query.
MAX_GROUPS = 20
MAX_CONDITIONS = 100
MAX_SORT_KEYS = 5
MAX_Q_LENGTH = 200
MAX_LIST_ITEMS = 100  # values of one `in` / `not_in` / `all` condition
MAX_SPAN_AMOUNT = 100_000  # `within_last` and friends
SPAN_UNITS = ("hours", "days", "weeks", "months", "years")
MAX_NAME_LENGTH = 100  # a field name or operator in a query; longer is never valid
MAX_VALUE_TEXT = 1000  # one text value of a condition
MAX_CURSOR_LENGTH = 2000  # a `cursor` we issued is far shorter
SORT_DIRECTIONS = ("asc", "desc")

# Saved views.
MAX_VIEWS = 100
MAX_VIEW_NAME = 100
MAX_VIEW_DEPTH = 5  # saved views a query may reach through `view in [...]`, one inside the other
MAX_ROW_ID = 2**63 - 1  # a bigint key: a larger id names no row (and must not reach PostgreSQL)
