"""Failed evaluations spend budget, and failures in a row stop a search as failed with the last error
(the search step and evaluation run as the workers call them, user code in the real sandbox)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from searches import services
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec

ALWAYS_FAILS = "def evaluate(encoding, fidelity):\n    raise RuntimeError('CUDA out of memory')\n"


@pytest.fixture
def real_space(make_space, pretrained_bundle):
    space = make_space()
    space.bundle_file.save("space.nastune", ContentFile(pretrained_bundle.read_bytes()), save=True)
    return space


def run_until_ended(search: SearchInstance, limit: int = 40) -> SearchInstance:
    """Do what the workers do, one message at a time, until the search ends (bounded)."""
    for _ in range(limit):
        services.search_step(search_id=search.id)
        search.refresh_from_db()
        queued = list(search.evaluations.filter(state=Evaluation.State.QUEUED).values_list("id", flat=True))
        if search.state not in SearchInstance.ACTIVE_STATES:
            return search
        for evaluation_id in queued:
            services.evaluation_run(evaluation_id=evaluation_id)
    raise AssertionError(f"search still {search.state} after {limit} steps")


@pytest.mark.django_db(transaction=True)
def test_failures_spend_the_budget_and_a_search_without_success_fails_with_the_last_error(users, real_space) -> None:
    search = services.search_create(owner=users["owner"], space=real_space, spec=SearchSpec(
        name="broken", evaluator_kind="module", evaluator_source=ALWAYS_FAILS, budget=3, seed=1))
    search = run_until_ended(search)
    failed = search.evaluations.filter(state=Evaluation.State.FAILED)
    assert failed.count() == 3, "budget 3: three failed evaluations, not the whole space"
    assert search.spent == pytest.approx(3.0)
    assert search.state == SearchInstance.State.FAILED
    assert "CUDA out of memory" in search.failure_reason


@pytest.mark.django_db(transaction=True)
def test_five_failures_in_a_row_stop_the_search_before_its_budget(users, real_space) -> None:
    search = services.search_create(owner=users["owner"], space=real_space, spec=SearchSpec(
        name="broken", evaluator_kind="module", evaluator_source=ALWAYS_FAILS, budget=20, parallelism=2, seed=1))
    search = run_until_ended(search)
    assert search.state == SearchInstance.State.FAILED
    assert search.failure_reason.startswith("5 evaluations failed in a row; the last error:")
    assert "CUDA out of memory" in search.failure_reason
    assert 5 <= search.evaluations.count() <= 6 and search.spent < 20
    assert not search.evaluations.filter(encoding_index=2).exists(), "its profiling failed: never proposed"
