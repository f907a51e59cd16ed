"""A user raises the budget of a search; a finished search goes back to running."""

from __future__ import annotations

import pytest

from searches.models import SearchInstance
from tests.api.expect import assert_error


def test_extending_a_finished_search_runs_it_again(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED, n_running=0)
    response = api("owner").post(f"/api/searches/{search.id}/extend/", {"budget": 20}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["budget"] == 20 and response.json()["state"] == "running"
    search.refresh_from_db()
    assert search.budget == 20 and search.state == "running" and search.ended_at is None


def test_extending_a_running_search_keeps_it_running(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.RUNNING)
    response = api("owner").post(f"/api/searches/{search.id}/extend/", {"budget": 9.5}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "running"
    assert response.json()["budget"] == 9.5


@pytest.mark.parametrize("budget", [8, 3, 0, -1, "many"])
def test_the_new_budget_must_be_more_than_the_old(api, make_search, budget) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)  # budget 8
    response = api("owner").post(f"/api/searches/{search.id}/extend/", {"budget": budget}, format="json")
    assert_error(response, 400, "budget")
    search.refresh_from_db()
    assert search.budget == 8 and search.state == "finished"


@pytest.mark.parametrize("state", ["cancelled", "failed"])
def test_a_cancelled_or_failed_search_cannot_be_extended(api, make_search, state: str) -> None:
    search = make_search(state=state)
    assert_error(api("owner").post(f"/api/searches/{search.id}/extend/", {"budget": 30}, format="json"),
                 409, "state", f"is {state}")


def test_outsider_cannot_extend_a_search(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)
    response = api("outsider").post(f"/api/searches/{search.id}/extend/", {"budget": 30}, format="json")
    assert response.status_code == 404
    search.refresh_from_db()
    assert search.budget == 8
