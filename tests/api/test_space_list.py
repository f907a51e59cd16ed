"""A user lists their search spaces, a page at a time."""

from __future__ import annotations

import pytest

from tests.api.expect import assert_error


def test_a_user_sees_only_their_own_spaces_newest_first(api, make_space, users) -> None:
    older = make_space(name="older")
    newer = make_space(name="newer")
    make_space(owner=users["outsider"], name="not mine")
    body = api("owner").get("/api/spaces/").json()
    assert body["count"] == 2
    assert [space["id"] for space in body["results"]] == [newer.id, older.id]
    assert body["results"][0]["state"] == "ready" and body["results"][0]["progress_fraction"] == 1.0


def test_spaces_come_in_pages_of_the_requested_size(api, make_space) -> None:
    ids = [make_space(name=f"s{k}").id for k in range(5)]
    client = api("owner")
    first = client.get("/api/spaces/?page_size=2").json()
    last = client.get("/api/spaces/?page_size=2&page=3").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"] and first["previous"] is None
    assert [s["id"] for s in last["results"]] == [min(ids)] and last["next"] is None


@pytest.mark.parametrize(("query", "field"), [
    ("page=0", "page"), ("page=abc", "page"), ("page=99", "page"), ("page_size=0", "page_size"),
    ("page_size=501", "page_size"), ("page_size=ten", "page_size"),
])
def test_a_bad_page_or_page_size_is_refused(api, make_space, query: str, field: str) -> None:
    make_space()
    assert_error(api("owner").get(f"/api/spaces/?{query}"), 400, field)


def test_someone_without_spaces_gets_an_empty_first_page(api) -> None:
    assert api("teammate").get("/api/spaces/").json() == {"count": 0, "next": None, "previous": None, "results": []}
