"""Django admin of contacts, opportunities and saved views, for sales-ops staff and built to stay
fast on millions of rows (docs/contacts.md, "Admin"):

- `contact`: the contact list and change form; `listing`: the list's org, saved view, custom
  columns and filters (smart-list conditions of the search compiler); `actions`: export and bulk
  actions (jobs) on the ticked contacts or the whole filtered list; `forms`: the typed custom-field
  editors; `nothing_lost`: trash, history, merge, duplicates; `importing`: the CSV import page;
  `records`: opportunities and saved views.
- Staff who are not superusers reach only their organizations (orgs.admin.StaffScope), and act
  there as their membership.
- No exact counts past 10,000 rows, newest first by primary key, no DISTINCT over the table.
"""

from contacts.admin import contact, records  # noqa: F401  (registers the admins)
from contacts.admin.base import CappedCountPaginator

__all__ = ["CappedCountPaginator"]
