"""Pause, resume, cancel, delete and retry from the dashboard call the same services as the API."""

from __future__ import annotations

import pytest

from searches.models import Evaluation
from tests.frontend.factories import make_search, make_space


@pytest.fixture
def search(users):
    return make_search(users["owner"], make_space(users["owner"]), n_evaluations=14, failed_every=7)


def test_pause_then_resume(owner_client, search) -> None:
    response = owner_client.post(f"/searches/{search.id}/pause/", follow=True)
    search.refresh_from_db()
    assert search.state == "paused"
    page = response.content.decode()
    assert "Search paused." in page
    assert 'data-states="paused">' in page  # the resume button is shown, pause hidden
    owner_client.post(f"/searches/{search.id}/resume/")
    search.refresh_from_db()
    assert search.state == "running"


def test_an_action_the_state_does_not_allow_says_why(owner_client, search) -> None:
    owner_client.post(f"/searches/{search.id}/cancel/")
    response = owner_client.post(f"/searches/{search.id}/resume/", follow=True)
    assert "cannot resume a search that is cancelled" in response.content.decode()
    search.refresh_from_db()
    assert search.state == "cancelled"


def test_unknown_action_and_get_are_refused(owner_client, search) -> None:
    assert owner_client.post(f"/searches/{search.id}/explode/").status_code == 404
    assert owner_client.get(f"/searches/{search.id}/pause/").status_code == 405


def test_retry_a_failed_evaluation(owner_client, search) -> None:
    failed = search.evaluations.filter(state="failed").first()
    page = owner_client.get(f"/searches/{search.id}/?state=failed").content.decode()
    assert f"/evaluations/{failed.id}/retry/" in page
    response = owner_client.post(f"/searches/{search.id}/evaluations/{failed.id}/retry/", {"query": "state=failed"})
    assert response["Location"] == f"/searches/{search.id}/?state=failed#evaluations"
    retry = Evaluation.objects.get(search=search, encoding_index=failed.encoding_index, attempt=failed.attempt + 1)
    assert retry.state == "queued"
    failed.refresh_from_db()
    assert failed.retried
    again = owner_client.post(f"/searches/{search.id}/evaluations/{failed.id}/retry/", follow=True)
    assert "only a failed evaluation that was not retried yet can be retried" in again.content.decode()


def test_deleting_is_for_ended_searches(owner_client, search) -> None:
    response = owner_client.post(f"/searches/{search.id}/delete/", follow=True)
    assert "cancel it before deleting it" in response.content.decode()
    owner_client.post(f"/searches/{search.id}/cancel/")
    assert owner_client.post(f"/searches/{search.id}/delete/")["Location"] == "/"
    assert not type(search).objects.filter(id=search.id).exists()


def test_space_with_an_active_search_cannot_be_deleted(owner_client, search) -> None:
    response = owner_client.post(f"/spaces/{search.space_id}/delete/", follow=True)
    assert "still active" in response.content.decode()
