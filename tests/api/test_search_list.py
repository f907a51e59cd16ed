"""A user lists their searches and opens one."""

from __future__ import annotations


def test_a_user_sees_only_their_own_searches_newest_first(api, make_search, users) -> None:
    older = make_search(name="older")
    newer = make_search(name="newer")
    make_search(owner=users["outsider"], name="not mine")
    body = api("owner").get("/api/searches/?page_size=10").json()
    assert [search["id"] for search in body["results"]] == [newer.id, older.id]


def test_a_search_shows_its_figures(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1)
    body = api("owner").get(f"/api/searches/{search.id}/").json()
    assert body["state"] == "running" and body["finished_count"] == 11
    assert body["spent"] == search.spent and body["best_value"] == search.best_value
    assert body["best_index"] == search.best_index and body["budget_fraction"] == min(1.0, search.spent / 8)
    assert body["evaluator_kind"] == "tabular" and body["space_name"] == "tiny"
