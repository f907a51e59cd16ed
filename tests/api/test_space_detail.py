"""A user looks at one search space and its progress."""

from __future__ import annotations

from spaces.models import SearchSpace


def test_the_owner_sees_the_space_with_its_progress(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.PROFILING)
    SearchSpace.objects.filter(id=space.id).update(progress_done=6, progress_total=24)
    body = api("owner").get(f"/api/spaces/{space.id}/").json()
    assert body["state"] == "profiling"
    assert (body["progress_done"], body["progress_total"], body["progress_fraction"]) == (6, 24, 0.25)
    assert body["metrics"] == ["flops", "params"] and body["profile_failures"] == 1
    assert body["has_bundle"] is True


def test_a_failed_space_says_why(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.FAILED, with_bundle=False)
    SearchSpace.objects.filter(id=space.id).update(failure_reason="validation failed: no torch")
    body = api("owner").get(f"/api/spaces/{space.id}/").json()
    assert body["state"] == "failed" and body["failure_reason"] == "validation failed: no torch"
    assert body["has_bundle"] is False
