"""The smart-list search compiler: JSON → validated condition tree → Django `Q`.

- `query`: stage 1, parse the JSON body into a typed tree, collecting every error;
- `fields`: the one field registry (built-in columns and the org's `custom.<key>`);
- `operators`: per filter kind, each operator's value shape and the `Q` it emits;
- `compiler`: resolves fields and operators and assembles the `Q` and the ordering.
"""

from contacts.search.compiler import SearchCompiler, SearchPlan, SortPlan
from contacts.search.fields import FieldRegistry, SearchField

__all__ = ["FieldRegistry", "SearchCompiler", "SearchField", "SearchPlan", "SortPlan"]
