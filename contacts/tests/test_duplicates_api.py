"""The duplicate finder through HTTP: each rule, merging, dismissals, scope and paging."""

from __future__ import annotations

import pytest

from contacts.testing import make_contact, make_contacts

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/duplicates"
DISMISS = "/api/v1/contacts/duplicates/dismiss"


def groups(actor, **params) -> list[dict]:
    response = actor.client.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def id_sets(actor) -> list[list[int]]:
    return [group["ids"] for group in groups(actor)]


def pair(org, first: dict, second: dict) -> list[int]:
    return sorted(c.id for c in make_contacts(org, [first, second]))


def test_the_same_email_in_another_case_cannot_exist_so_the_email_rule_finds_mailboxes(alice):
    # Two contacts with one address in two cases is refused at write (409): the folded email is unique.
    make_contact(alice.org, name="Ada", email="ada@example.com")
    response = alice.client.post("/api/v1/contacts", {"name": "Ada 2", "email": "ADA@Example.com"}, format="json")
    assert response.status_code == 409
    assert groups(alice) == []


def test_gmail_ignores_case_dots_and_plus_tags(alice):
    ids = pair(alice.org, {"name": "Ada", "email": "Ada.Lovelace@gmail.com"},
               {"name": "Countess", "email": "adalovelace+crm@googlemail.com"})  # fmt: skip
    (group,) = groups(alice)
    assert group["ids"] == ids
    assert group["reasons"] == ["email"]
    assert group["score"] == 90
    assert group["matches"] == [{"reason": "email", "ids": ids}]
    assert [c["email"] for c in group["contacts"]] == ["Ada.Lovelace@gmail.com", "adalovelace+crm@googlemail.com"]
    assert set(group["contacts"][0]) == {"id", "name", "email", "phone", "company", "updated_at"}


def test_plus_tag_at_a_plus_addressing_provider_is_ignored_but_not_dots(alice):
    ids = pair(alice.org, {"name": "A", "email": "ada@outlook.com"}, {"name": "B", "email": "ada+news@outlook.com"})
    make_contact(alice.org, name="C", email="a.da@outlook.com")  # dots count at Outlook
    assert id_sets(alice) == [ids]


def test_plus_tag_of_a_provider_not_in_the_table_is_another_address(alice):
    pair(alice.org, {"name": "A", "email": "ada@example.com"}, {"name": "B", "email": "ada+news@example.com"})
    pair(alice.org, {"name": "C", "email": "bob@yahoo.com"}, {"name": "D", "email": "b.o.b@yahoo.com"})
    assert groups(alice) == []


def test_same_phone(alice):
    ids = pair(alice.org, {"name": "Ada", "phone": "+442079460958"}, {"name": "Lady A", "phone": "+442079460958"})
    make_contact(alice.org, name="Other", phone="+442079460959")
    (group,) = groups(alice)
    assert (group["ids"], group["reasons"], group["score"]) == (ids, ["phone"], 70)


def test_same_name_and_company_ignoring_case_accents_and_spacing(alice):
    ids = pair(alice.org, {"name": "José  Núñez", "company": "Café Ltd"}, {"name": "JOSE NUNEZ", "company": "cafe ltd"})
    (group,) = groups(alice)
    assert (group["ids"], group["reasons"], group["score"]) == (ids, ["name_company"], 60)


def test_name_without_company_or_company_without_name_is_not_a_key(alice):
    pair(alice.org, {"name": "Ada Lovelace"}, {"name": "Ada Lovelace"})
    pair(alice.org, {"company": "Acme"}, {"company": "Acme"})
    pair(alice.org, {"name": "Ada Lovelace", "company": "Acme"}, {"name": "Ada Lovelace", "company": "Globex"})
    assert groups(alice) == []


def test_a_contact_matched_by_two_rules_ends_in_one_group_with_both_reasons(alice):
    a, b, c = make_contacts(alice.org, [
        {"name": "Ada", "email": "ada@gmail.com"},
        {"name": "Ada L", "email": "a.d.a@gmail.com", "phone": "+442079460958"},
        {"name": "Lady", "phone": "+442079460958"},
    ])  # fmt: skip
    (group,) = groups(alice)
    assert group["ids"] == [a.id, b.id, c.id]
    assert group["reasons"] == ["email", "phone"]
    assert group["matches"] == [{"reason": "email", "ids": [a.id, b.id]}, {"reason": "phone", "ids": [b.id, c.id]}]
    assert group["score"] == 70  # the least linked member (c, by phone alone)


def test_two_rules_on_the_same_pair_score_higher_and_come_first(alice):
    weak = pair(alice.org, {"name": "X", "phone": "+14155550100"}, {"name": "Y", "phone": "+14155550100"})
    strong = pair(alice.org, {"name": "Ada", "company": "Acme", "email": "ada@gmail.com"},
                  {"name": "ada", "company": "ACME", "email": "ada+1@gmail.com"})  # fmt: skip
    found = groups(alice)
    assert [g["ids"] for g in found] == [strong, weak]
    assert found[0]["score"] == 96 and found[0]["reasons"] == ["email", "name_company"]


def test_a_contact_with_no_match_is_not_listed(alice):
    ids = pair(alice.org, {"name": "A", "phone": "+14155550100"}, {"name": "B", "phone": "+14155550100"})
    loner = make_contact(alice.org, name="Loner", email="loner@gmail.com", phone="+14155550199", company="Solo")
    assert id_sets(alice) == [ids]
    assert loner.id not in ids


def test_a_value_shared_by_more_than_ten_contacts_links_nobody(alice):
    make_contacts(alice.org, [{"name": f"Desk {k}", "phone": "+14155550100"} for k in range(11)])
    assert groups(alice) == []


def test_dismiss_hides_the_group_and_a_new_member_brings_it_back(alice, bob):
    ids = pair(alice.org, {"name": "A", "phone": "+14155550100"}, {"name": "B", "phone": "+14155550100"})
    response = alice.client.post(DISMISS, {"ids": ids[::-1]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["ids"] == ids and response.json()["user"] == alice.user.id
    assert groups(alice) == [] and groups(bob) == []  # the org's, not the caller's
    again = bob.client.post(DISMISS, {"ids": ids}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, response.json()["id"])
    third = make_contact(alice.org, name="C", phone="+14155550100")
    assert id_sets(alice) == [[*ids, third.id]]


def test_dismissing_part_of_a_group_leaves_the_group(alice):
    a, b, c = make_contacts(alice.org, [{"name": n, "phone": "+14155550100"} for n in "ABC"])
    assert alice.client.post(DISMISS, {"ids": [a.id, b.id]}, format="json").status_code == 201
    assert id_sets(alice) == [[a.id, b.id, c.id]]


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"ids": [1]}, "ids", "min_length"),
        ({"ids": list(range(1, 12))}, "ids", "max_length"),
        ({"ids": "1,2"}, "ids", "not_a_list"),
        ({"ids": [1, "x"]}, "ids.1", "invalid"),
        ({"ids": [1, "2"]}, "ids.1", "invalid"),
        ({}, "ids", "required"),
        ({"ids": [1, 2], "why": "no"}, "why", "unknown_field"),
        ([1, 2], None, "wrong_type"),
    ],
)
def test_dismiss_refuses_a_malformed_body(alice, body, attr, code):
    response = alice.client.post(DISMISS, body, format="json")
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert {"attr": attr, "code": code} in [{"attr": e["attr"], "code": e["code"]} for e in response.json()["errors"]]


def test_dismiss_refuses_repeated_and_unknown_ids_naming_them(alice, charlie):
    mine = make_contact(alice.org, name="Mine")
    theirs = make_contact(charlie.org, name="Theirs")
    response = alice.client.post(DISMISS, {"ids": [mine.id, mine.id]}, format="json")
    assert (response.status_code, response.json()["errors"][0]["attr"]) == (422, "ids.1")
    response = alice.client.post(DISMISS, {"ids": [mine.id, theirs.id, 10**15]}, format="json")
    assert response.status_code == 422
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [
        ("ids.1", "not_found"),
        ("ids.2", "not_found"),
    ]


def test_no_grouping_across_orgs(alice, charlie):
    make_contact(alice.org, name="Ada", email="ada@gmail.com", phone="+14155550100", company="Acme")
    make_contact(charlie.org, name="Ada", email="a.da@gmail.com", phone="+14155550100", company="Acme")
    assert groups(alice) == [] and groups(charlie) == []
    make_contact(charlie.org, name="Ada", email="ada+x@gmail.com")
    (group,) = groups(charlie)
    assert len(group["ids"]) == 2 and all(c["email"] != "ada@gmail.com" for c in group["contacts"])


def test_an_assigned_only_member_sees_groups_among_their_own_contacts(alice, carol):
    mine = pair(alice.org, {"name": "A", "phone": "+14155550100", "assigned_to": carol.user},
                {"name": "B", "phone": "+14155550100", "assigned_to": carol.user})  # fmt: skip
    make_contact(alice.org, name="C", phone="+14155550100")  # not carol's: not in her group
    pair(alice.org, {"name": "D", "phone": "+14155550111"}, {"name": "E", "phone": "+14155550111"})
    assert id_sets(carol) == [mine]
    assert len(groups(alice)) == 2
    response = carol.client.post(DISMISS, {"ids": [*mine, id_sets(alice)[0][0]]}, format="json")
    assert response.status_code == 422  # a contact she cannot see


def test_pages_follow_the_cursor_without_gaps_or_repeats(alice):
    make_contacts(alice.org, [
        {"name": f"P{k}{side}", "phone": f"+1415555{k:04d}"} for k in range(7) for side in "ab"
    ])  # fmt: skip
    seen, cursor, pages = [], None, 0
    while True:
        response = alice.client.get(URL, {"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 7
        seen += [g["ids"] for g in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert body["next"] is None
            break
        assert "cursor=" in body["next"]
    assert pages == 3 and len(seen) == 7 and len({tuple(s) for s in seen}) == 7
    assert seen == [g["ids"] for g in groups(alice, limit=100)]


@pytest.mark.parametrize(
    ("params", "attr"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "nope"}, "cursor"),
     ({"colour": "red"}, "colour")],
)  # fmt: skip
def test_bad_paging_is_a_422_naming_it(alice, params, attr):
    response = alice.client.get(URL, params)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["attr"] == attr


def test_a_group_of_two_rules_is_dismissed_as_a_whole(alice):
    a, b, c = make_contacts(alice.org, [
        {"name": "Ada", "email": "ada@gmail.com"},
        {"name": "Ada L", "email": "a.d.a@gmail.com", "phone": "+442079460958"},
        {"name": "Lady", "phone": "+442079460958"},
    ])  # fmt: skip
    assert alice.client.post(DISMISS, {"ids": [a.id, b.id]}, format="json").status_code == 201
    assert id_sets(alice) == [[a.id, b.id, c.id]]  # c is not within the dismissal
    assert alice.client.post(DISMISS, {"ids": [a.id, b.id, c.id]}, format="json").status_code == 201
    assert groups(alice) == []


def test_pages_mix_merged_and_single_key_groups_in_one_order(alice):
    rows = []
    for k in range(4):  # merged groups: email + phone on a chain of three
        rows += [{"name": f"M{k}a", "email": f"m{k}@gmail.com"},
                 {"name": f"M{k}b", "email": f"m.{k}@gmail.com", "phone": f"+1415666{k:04d}"},
                 {"name": f"M{k}c", "phone": f"+1415666{k:04d}"}]  # fmt: skip
    for k in range(5):  # single-key groups: email (90) and phone (70)
        rows += [{"name": f"E{k}", "email": f"e{k}@gmail.com"}, {"name": f"E{k}'", "email": f"e{k}+x@gmail.com"}]
        rows += [{"name": f"P{k}", "phone": f"+1415777{k:04d}"}, {"name": f"P{k}'", "phone": f"+1415777{k:04d}"}]
    make_contacts(alice.org, rows)
    seen, cursor = [], None
    while True:
        body = alice.client.get(URL, {"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        assert body["count"] == 14
        seen += body["results"]
        if not (cursor := body["next_cursor"]):
            break
    keys = [(-g["score"], -g["ids"][-1]) for g in seen]
    assert keys == sorted(keys) and len(set(keys)) == 14
    assert [g["score"] for g in seen] == [90] * 5 + [70] * 9
