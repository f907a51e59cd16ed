"""A user pauses, resumes and cancels a search; a state that does not allow it gets 409."""

from __future__ import annotations

import pytest

from searches.models import Evaluation, SearchInstance
from tests.api.expect import assert_error


def test_pause_then_resume(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.RUNNING)
    client = api("owner")
    paused = client.post(f"/api/searches/{search.id}/pause/")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    resumed = client.post(f"/api/searches/{search.id}/resume/")
    assert resumed.status_code == 200 and resumed.json()["state"] == "running"


def test_cancel_stops_the_evaluations_in_flight(api, make_search, monkeypatch) -> None:
    monkeypatch.setattr("nasweb.celery.app.control.revoke", lambda task_ids: None)
    search = make_search(state=SearchInstance.State.RUNNING, n_running=2)
    response = api("owner").post(f"/api/searches/{search.id}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert not search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).exists()


@pytest.mark.parametrize(("state", "action"), [
    ("finished", "pause"), ("cancelled", "pause"), ("running", "resume"), ("finished", "resume"),
    ("finished", "cancel"), ("failed", "cancel"),
])
def test_an_action_the_state_does_not_allow_is_a_conflict(api, make_search, state: str, action: str) -> None:
    search = make_search(state=state)
    assert_error(api("owner").post(f"/api/searches/{search.id}/{action}/"), 409, "state", f"is {state}")
    search.refresh_from_db()
    assert search.state == state


def test_actions_take_no_get(api, make_search) -> None:
    search = make_search()
    assert api("owner").get(f"/api/searches/{search.id}/pause/").status_code == 405
