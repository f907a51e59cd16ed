"""`make run`'s demo data: a ready NB201 space, a finished search, and a live one a worker runs."""

from __future__ import annotations

import time

import pytest

from nasweb.demo import DEMO_SPACE_NAME, ensure_demo, nb201_table_csv
from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from tests.support.waiting import wait_until


def test_demo_table_has_every_cell_and_a_noisier_low_fidelity() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    rows = nb201_table_csv().decode().splitlines()
    assert rows[0] == "index,hi,lo" and len(rows) == 15_626
    values = np.array([[float(x) for x in row.split(",")] for row in rows[1:]])
    assert np.array_equal(values[:, 0], np.arange(15_625))
    rho = spearmanr(values[:, 1], values[:, 2]).statistic
    assert 0.5 < rho < 0.99  # related to the high fidelity, but not the same numbers


@pytest.mark.slow
def test_demo_gives_a_ready_space_a_finished_search_and_a_live_one(start_worker, users) -> None:
    messages: list[str] = []
    ensure_demo(users["owner"], write=messages.append)
    space = SearchSpace.objects.get(owner=users["owner"], name=DEMO_SPACE_NAME)
    assert space.state == "ready" and space.n_encodings == 15_625
    assert {"params", "flops", "latency"} <= set(space.metrics)
    finished, live = SearchInstance.objects.filter(owner=users["owner"]).order_by("id")
    assert finished.state == "finished"
    assert finished.evaluations.filter(state=Evaluation.State.DONE, fidelity="hi").count() == 20
    assert finished.best_value is not None and finished.best_value > 85
    # Its surrogate (the default GP, refitted on demand: nothing to store) answers predictions quickly.
    from searches.selectors import search_predictions

    assert not finished.surrogate_checkpoint
    started = time.monotonic()
    rows = search_predictions(search=finished, indices=list(range(50)))
    assert time.monotonic() - started < 5
    assert {"hi", "params", "flops", "latency"} <= set(rows[0]["predictions"])
    assert live.state == "queued" and live.lo_fi_cost is not None

    ensure_demo(users["owner"], write=messages.append)  # a second make run adds nothing
    assert SearchInstance.objects.filter(owner=users["owner"]).count() == 2

    start_worker(name="demo")
    wait_until(lambda: live.evaluations.filter(state=Evaluation.State.DONE).count() >= 2, 120, interval=0.5,
               message="the live demo search shows no points")
    live.refresh_from_db()
    assert live.state == "running"
