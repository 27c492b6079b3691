"""DRF's content negotiation, remembered: API clients send the same few `Accept` headers on every
call, and parsing one costs a measurable share of a `GET /contacts/{id}`."""

from rest_framework.negotiation import DefaultContentNegotiation


class RememberingContentNegotiation(DefaultContentNegotiation):
    """The renderer DRF chose for an (`Accept`, format, renderer classes) key, reused; a request
    DRF refuses (406, unknown format) is refused afresh each time."""

    MAX_REMEMBERED = 512  # Accept is the client's to choose: keep the table bounded
    _choices: dict = {}

    def select_renderer(self, request, renderers, format_suffix=None):
        requested_format = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        key = (request.META.get("HTTP_ACCEPT"), requested_format, tuple(type(r) for r in renderers))
        choice = self._choices.get(key)
        if choice is not None:
            position, media_type = choice
            return renderers[position], media_type
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)
        if len(self._choices) < self.MAX_REMEMBERED:
            self._choices[key] = (renderers.index(renderer), media_type)
        return renderer, media_type
