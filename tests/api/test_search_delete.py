"""A user deletes an ended search; an active one must be cancelled first."""

from __future__ import annotations

from searches.models import Evaluation, SearchInstance
from tests.api.expect import assert_error


def test_an_ended_search_is_deleted_with_its_evaluations(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)
    assert api("owner").delete(f"/api/searches/{search.id}/").status_code == 204
    assert not SearchInstance.objects.exists() and not Evaluation.objects.exists()


def test_an_active_search_is_kept_with_409(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.PAUSED)
    assert_error(api("owner").delete(f"/api/searches/{search.id}/"), 409, "state", "cancel it")
    assert SearchInstance.objects.filter(id=search.id).exists()
