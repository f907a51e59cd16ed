"""A user pages through a search's evaluations, filtered and sorted."""

from __future__ import annotations

import pytest

from tests.api.expect import assert_error


def results(client, search, query: str = "") -> list[dict]:
    response = client.get(f"/api/searches/{search.id}/evaluations/?page_size=500&{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_evaluations_come_in_creation_order_a_page_at_a_time(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1, n_running=1)
    client = api("owner")
    page = client.get(f"/api/searches/{search.id}/evaluations/?page=2&page_size=5").json()
    ids = list(search.evaluations.order_by("id").values_list("id", flat=True))
    assert page["count"] == 12 and [row["id"] for row in page["results"]] == ids[5:10]
    assert "log_tail" not in page["results"][0]  # the list stays light; the detail has the log


def test_filtering_by_state_and_fidelity(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1, n_running=1)
    client = api("owner")
    assert [row["seq"] for row in results(client, search, "state=failed")] == [11]
    assert [row["state"] for row in results(client, search, "state=running")] == ["running"]
    assert {row["fidelity"] for row in results(client, search, "fidelity=lo")} == {"lo"}
    assert len(results(client, search, "fidelity=lo&state=done")) == 5


def test_filtering_by_a_value_range_includes_both_ends(api, make_search) -> None:
    search = make_search(n_done=10)
    values = sorted(search.evaluations.exclude(value=None).values_list("value", flat=True))
    low, high = values[2], values[6]
    rows = results(api("owner"), search, f"value_min={low}&value_max={high}")
    assert sorted(row["value"] for row in rows) == values[2:7]


@pytest.mark.parametrize("ordering", ["value", "-value", "-seq", "duration_s", "-finished_at", "encoding_index"])
def test_sorting_by_a_whitelisted_field(api, make_search, ordering: str) -> None:
    search = make_search(n_done=10, n_running=0)
    rows = results(api("owner"), search, f"ordering={ordering}&state=done")
    field = ordering.lstrip("-")
    keys = [row[field] for row in rows]
    assert keys == sorted(keys, reverse=ordering.startswith("-"))


@pytest.mark.parametrize(("query", "field"), [
    ("ordering=error", "ordering"), ("ordering=owner__password", "ordering"), ("state=lost", "state"),
    ("fidelity=mid", "fidelity"), ("value_min=abc", "value_min"), ("value_max=nan", "value_max"),
    ("value_min=2&value_max=1", "value_max"), ("page_size=1000", "page_size"),
])
def test_a_bad_filter_or_ordering_is_refused(api, make_search, query: str, field: str) -> None:
    search = make_search()
    assert_error(api("owner").get(f"/api/searches/{search.id}/evaluations/?{query}"), 400, field)
