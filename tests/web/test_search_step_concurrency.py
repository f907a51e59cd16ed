"""Concurrent search steps (several evaluations finishing at once) never start more than
``parallelism`` evaluations, never propose one twice, and never lose the engine's state."""

from __future__ import annotations

from collections import Counter

import pytest

from searches import services
from searches.models import Evaluation
from searches.storage import EvaluationRowStorage
from tests.support.threads import at_once
from tests.web.test_search_flow import create_search, expected_value


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_steps_fill_parallelism_exactly_once(ready_space, users, transactional_db) -> None:
    search = create_search(ready_space, users["owner"], budget=12, parallelism=3)
    services.search_step(search_id=search.id)
    assert search.evaluations.count() == 3
    for round_number in range(2):
        finished = list(search.evaluations.filter(state=Evaluation.State.QUEUED))
        for seq, evaluation in enumerate(finished, start=search.evaluations.exclude(seq=None).count() + 1):
            Evaluation.objects.filter(id=evaluation.id).update(
                state=Evaluation.State.DONE, value=expected_value(evaluation.encoding_index, evaluation.fidelity),
                cost=1.0, seq=seq)

        at_once(lambda: services.search_step(search_id=search.id), 3)
        search.refresh_from_db()
        queued = search.evaluations.filter(state=Evaluation.State.QUEUED).count()
        assert queued == 3, f"round {round_number}: {queued} evaluations queued for parallelism 3"
        seen = [(e["index"], e["fidelity"]) for e in EvaluationRowStorage(search).history()]
        assert len(seen) == len(set(seen)) == search.evaluations.filter(state=Evaluation.State.DONE).count()
    keys = Counter(search.evaluations.values_list("encoding_index", "fidelity"))
    assert max(keys.values()) == 1
