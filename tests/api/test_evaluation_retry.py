"""A user retries a failed evaluation as a new attempt."""

from __future__ import annotations

from searches.models import Evaluation, SearchInstance
from tests.api.expect import assert_error


def test_a_failed_evaluation_gets_a_new_queued_attempt(api, make_search, django_capture_on_commit_callbacks) -> None:
    search = make_search(n_done=2, n_failed=1)
    failed = search.evaluations.get(state="failed")
    with django_capture_on_commit_callbacks() as callbacks:
        response = api("owner").post(f"/api/searches/{search.id}/evaluations/{failed.id}/retry/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["state"], body["attempt"], body["encoding_index"]) == ("queued", 2, failed.encoding_index)
    assert Evaluation.objects.get(id=failed.id).retried and len(callbacks) == 1


def test_retrying_twice_is_a_conflict(api, make_search) -> None:
    search = make_search(n_done=2, n_failed=1)
    failed = search.evaluations.get(state="failed")
    client = api("owner")
    client.post(f"/api/searches/{search.id}/evaluations/{failed.id}/retry/")
    assert_error(client.post(f"/api/searches/{search.id}/evaluations/{failed.id}/retry/"), 409, "state")
    assert search.evaluations.filter(encoding_index=failed.encoding_index, fidelity=failed.fidelity).count() == 2


def test_a_done_evaluation_cannot_be_retried(api, make_search) -> None:
    search = make_search(n_done=2, n_failed=0)
    done = search.evaluations.first()
    assert_error(api("owner").post(f"/api/searches/{search.id}/evaluations/{done.id}/retry/"), 409, "state")


def test_an_ended_search_cannot_retry(api, make_search) -> None:
    search = make_search(n_done=2, n_failed=1, state=SearchInstance.State.FINISHED)
    failed = search.evaluations.get(state="failed")
    assert_error(api("owner").post(f"/api/searches/{search.id}/evaluations/{failed.id}/retry/"), 409, "state",
                 "finished")
