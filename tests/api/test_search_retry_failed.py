"""A user retries every failed evaluation of a search at once, also after it finished."""

from __future__ import annotations

from searches.models import Evaluation
from tests.api.expect import assert_error


def test_retry_failed_of_a_finished_search_runs_it_again(api, make_search) -> None:
    search = make_search(state="finished", n_failed=2, n_running=0)
    failed = list(search.evaluations.filter(state="failed"))
    response = api("owner").post(f"/api/searches/{search.id}/retry-failed/")
    assert response.status_code == 201, response.content
    assert sorted(row["encoding_index"] for row in response.json()) == sorted(e.encoding_index for e in failed)
    assert all(row["state"] == "queued" and row["attempt"] == 2 for row in response.json())
    search.refresh_from_db()
    assert search.state == "running" and search.ended_at is None
    assert Evaluation.objects.filter(id__in=[e.id for e in failed], retried=True).count() == 2
    assert_error(api("owner").post(f"/api/searches/{search.id}/retry-failed/"), 409, "state", "no failed")


def test_retry_failed_of_a_cancelled_search_is_a_conflict(api, make_search) -> None:
    search = make_search(state="cancelled")
    assert_error(api("owner").post(f"/api/searches/{search.id}/retry-failed/"), 409, "state", "is cancelled")


def test_outsider_cannot_retry(api, make_search) -> None:
    search = make_search(state="finished")
    assert api("outsider").post(f"/api/searches/{search.id}/retry-failed/").status_code == 404
    assert not search.evaluations.filter(retried=True).exists()
