"""Content negotiation is DRF's, remembered per Accept header (crm.api.negotiation)."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from crm.api.negotiation import RememberingContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html;q=0.9, application/json",
    "text/html",
    "application/*",
    "application/problem+json, application/json;q=0.5",
]


@pytest.fixture(autouse=True)
def _forget():
    RememberingContentNegotiation._choices.clear()
    yield
    RememberingContentNegotiation._choices.clear()


def choose(negotiation, accept, query=""):
    """(renderer class, media type), or the exception DRF raises."""
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/api/v1/contacts" + query, **headers))
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except (NotAcceptable, Http404) as refused:
        return type(refused)
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
def test_a_remembered_choice_is_the_one_drf_makes(accept, query):
    expected = choose(DefaultContentNegotiation(), accept, query)
    first = choose(RememberingContentNegotiation(), accept, query)
    assert len(RememberingContentNegotiation._choices) == (0 if expected is NotAcceptable else 1)
    assert first == choose(RememberingContentNegotiation(), accept, query) == expected


def test_an_unacceptable_header_is_refused_every_time(alice):
    for _ in range(2):
        response = alice.client.get("/api/v1/contacts", HTTP_ACCEPT="application/xml")
        assert response.status_code == 406
    assert all(key[0] != "application/xml" for key in RememberingContentNegotiation._choices)


def test_the_table_stays_bounded_whatever_clients_send(monkeypatch):
    monkeypatch.setattr(RememberingContentNegotiation, "MAX_REMEMBERED", 5)
    for n in range(20):
        assert choose(RememberingContentNegotiation(), f"application/json; v={n}")[0] is JSONRenderer
    assert len(RememberingContentNegotiation._choices) == 5
