"""Hooks for apps that store data keyed by catalog entries (contacts store tags and custom values).

Sent inside the transaction that changes the catalog, so receivers' updates commit or
roll back with it.
"""

from django.dispatch import Signal

# kwargs: org_id, old_name, new_name
tag_renamed = Signal()
# kwargs: org_id, name
tag_deleted = Signal()
# kwargs: org_id, key
custom_field_deleted = Signal()
