"""`OPTIONS` answers: name, description, renderers and parsers, never the write forms.

DRF's SimpleMetadata builds the forms by calling `get_object()` for PUT, which crashes on views
with no `pk` in the URL (PUT /contacts/views) and would reveal whether an object exists.
"""

from rest_framework.metadata import SimpleMetadata


class PlainMetadata(SimpleMetadata):
    def determine_actions(self, request, view):
        return {}
