"""Content negotiation is DRF's own: what each `Accept` header and `?format=` gets."""

import pytest

JSON, HTML = "application/json", "text/html; charset=utf-8"

ANSWERS = [
    (None, "", 200, JSON),
    ("*/*", "", 200, JSON),
    ("application/json", "", 200, JSON),
    ("application/json; indent=4", "", 200, JSON),
    ("text/html;q=0.9, application/json", "", 200, JSON),
    ("text/html", "", 200, HTML),
    ("application/*", "", 200, JSON),
    ("application/problem+json, application/json;q=0.5", "", 200, JSON),
    ("application/xml", "", 406, None),
    (None, "?format=json", 200, JSON),
    (None, "?format=api", 200, HTML),
    ("text/html", "?format=json", 406, None),  # the format narrows the renderers; Accept still applies
    (None, "?format=xml", 404, None),
]


@pytest.mark.parametrize(("accept", "query", "status", "content_type"), ANSWERS)
def test_each_accept_header_gets_drfs_answer(alice, accept, query, status, content_type):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = alice.client.get("/api/v1/contacts" + query, **headers)
    assert response.status_code == status
    if content_type is not None:
        assert response["Content-Type"] == content_type


def test_an_unacceptable_header_is_refused_every_time(alice):
    for _ in range(2):
        response = alice.client.get("/api/v1/contacts", HTTP_ACCEPT="application/xml")
        assert response.status_code == 406
