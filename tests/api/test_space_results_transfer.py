"""Transfer: a space learns from a finished search on it (its hi-fi results become a sparse pretraining target)."""

from __future__ import annotations

import numpy as np
import pytest

from searches.models import Evaluation
from spaces import services
from spaces.models import SearchSpace
from spaces.services import load_profile


def test_a_search_s_results_become_a_sparse_target_and_the_space_pretrains_again(api, make_search) -> None:
    search = make_search(state="finished")
    space = search.space
    response = api("owner").post(f"/api/spaces/{space.id}/results/", {"search": search.id, "name": "c10"},
                                 format="json")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "pretraining"
    profile, failures = load_profile(SearchSpace.objects.get(id=space.id))
    done = dict(search.evaluations.filter(fidelity="hi", state=Evaluation.State.DONE).values_list(
        "encoding_index", "value"))
    column = profile["c10"]
    assert {int(i) for i in np.flatnonzero(np.isfinite(column))} == set(done)
    assert all(column[i] == pytest.approx(v) for i, v in done.items())
    assert failures == {2: "width 13 is not supported"}  # the profile's own failures are kept

    services.space_pretrain(space_id=space.id)  # what the pretraining worker does
    space.refresh_from_db()
    assert space.state == "ready", space.failure_reason
    from nastune import load_search_space

    bundle = load_search_space(space.bundle_file.path)
    assert "c10" in bundle.profile and "c10" in bundle.surrogate.metric_names


def test_a_search_without_hi_fi_results_is_refused_with_the_field(api, make_search) -> None:
    search = make_search(n_done=0, n_failed=1, n_running=0)
    response = api("owner").post(f"/api/spaces/{search.space_id}/results/", {"search": search.id}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "search"
    assert SearchSpace.objects.get(id=search.space_id).state == "ready"


def test_a_search_on_another_space_is_refused(api, make_search, make_space) -> None:
    search = make_search()
    other = make_space(name="other")
    response = api("owner").post(f"/api/spaces/{other.id}/results/", {"search": search.id}, format="json")
    assert response.status_code == 400 and "another search space" in response.json()["errors"][0]["reason"]


def test_an_outsider_cannot_use_someone_else_s_search(api, make_search, make_space, users) -> None:
    search = make_search()
    mine = make_space(owner=users["outsider"], name="mine")
    response = api("outsider").post(f"/api/spaces/{mine.id}/results/", {"search": search.id}, format="json")
    assert response.status_code == 404


def test_a_space_that_is_not_ready_answers_409(api, make_search) -> None:
    search = make_search()
    SearchSpace.objects.filter(id=search.space_id).update(state="pretraining")
    response = api("owner").post(f"/api/spaces/{search.space_id}/results/", {"search": search.id}, format="json")
    assert response.status_code == 409
