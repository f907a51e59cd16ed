"""A user renames a search and keeps notes and tags on it."""

from __future__ import annotations

from tests.api.expect import assert_error


def test_rename_notes_and_tags(api, make_search) -> None:
    search = make_search(state="finished")
    response = api("owner").patch(f"/api/searches/{search.id}/", {
        "name": "  widths only ", "notes": "lr 0.1 was too high", "tags": ["baseline", " cpu", "baseline", ""],
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["notes"], body["tags"]) == ("widths only", "lr 0.1 was too high", ["baseline", "cpu"])
    only_tags = api("owner").patch(f"/api/searches/{search.id}/", {"tags": []}, format="json").json()
    assert (only_tags["name"], only_tags["notes"], only_tags["tags"]) == ("widths only", "lr 0.1 was too high", [])


def test_bad_names_and_tags_are_refused(api, make_search) -> None:
    search = make_search()
    assert_error(api("owner").patch(f"/api/searches/{search.id}/", {"name": ""}, format="json"), 400, "name")
    assert_error(api("owner").patch(f"/api/searches/{search.id}/", {"tags": ["x" * 41]}, format="json"), 400, "tags")
    assert_error(api("owner").patch(f"/api/searches/{search.id}/", {"tags": [f"t{i}" for i in range(21)]},
                                    format="json"), 400, "tags")
    search.refresh_from_db()
    assert search.name == "tiny search" and search.tags == []


def test_outsider_cannot_rename_a_search(api, make_search) -> None:
    search = make_search()
    assert api("outsider").patch(f"/api/searches/{search.id}/", {"name": "mine"}, format="json").status_code == 404
    search.refresh_from_db()
    assert search.name == "tiny search"
