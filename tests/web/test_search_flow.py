"""Searches run through real workers: to budget, through a killed worker, through a Redis restart."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter

import pytest

from searches import services as search_services
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec
from spaces.models import SearchSpace
from tests.web.test_space_pipeline import tiny_encodings

EVALUATOR = """
import time

def evaluate(encoding, fidelity):
    width, depth, activation = encoding
    time.sleep({delay})
    return width * 0.1 + depth + (1.0 if activation == "relu" else 0.0) - (0.5 if fidelity == "lo" else 0.0)
"""
FAST_RECOVERY = {"NASWEB_HEARTBEAT_STALE_S": "6", "NASWEB_RECOVERY_INTERVAL_S": "1"}


def expected_value(index: int, fidelity: str) -> float:
    width, depth, activation = tiny_encodings()[index]
    return width * 0.1 + depth + (1.0 if activation == "relu" else 0.0) - (0.5 if fidelity == "lo" else 0.0)


def wait_for_search(search: SearchInstance, timeout: float = 300.0) -> SearchInstance:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        search.refresh_from_db()
        if search.state not in SearchInstance.ACTIVE_STATES:
            return search
        time.sleep(0.3)
    states = Counter(search.evaluations.values_list("state", flat=True))
    raise AssertionError(f"search stuck in {search.state} after {timeout}s; evaluations {dict(states)}")


def assert_every_evaluation_counted_once(search: SearchInstance) -> list[Evaluation]:
    done = list(search.evaluations.filter(state=Evaluation.State.DONE))
    keys = Counter((e.encoding_index, e.fidelity) for e in done)
    assert max(keys.values()) == 1, f"an encoding was evaluated twice: {keys.most_common(3)}"
    finished = search.evaluations.exclude(seq=None)
    seqs = sorted(finished.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), "finish order has gaps or repeats"
    assert not search.evaluations.filter(retried=False, told=False).exclude(
        state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).exists()
    for evaluation in done:
        assert evaluation.value == pytest.approx(expected_value(evaluation.encoding_index, evaluation.fidelity))
    spent = sum(e.cost for e in done)
    assert search.spent == pytest.approx(spent)
    return done


def create_search(space: SearchSpace, owner, *, delay: float = 0.0, budget: float = 5, parallelism: int = 2,
                  lo_fi_cost: float | None = None) -> SearchInstance:
    return search_services.search_create(
        owner=owner, space=space, spec=SearchSpec(
            name="tiny search", evaluator_kind="module", evaluator_source=EVALUATOR.format(delay=delay), budget=budget,
            parallelism=parallelism, seed=3, hi_fi_cost=10, lo_fi_cost=lo_fi_cost),
    )


@pytest.mark.slow
def test_search_with_an_uploaded_evaluator_runs_to_its_budget(ready_space, start_worker, users) -> None:
    start_worker(name="all", concurrency=1)
    search = wait_for_search(create_search(ready_space, users["owner"], budget=5, lo_fi_cost=2))
    assert search.state == "finished", search.failure_reason
    done = assert_every_evaluation_counted_once(search)
    assert search.spent <= search.budget + 1e-9
    assert search.spent >= search.budget - 1.0  # stopped only when no hi-fi evaluation fit any more
    hi_values = [e.value for e in done if e.fidelity == "hi"]
    assert search.best_value == max(hi_values)


@pytest.mark.slow
def test_a_killed_worker_loses_no_evaluation_and_counts_none_twice(ready_space, start_worker, users) -> None:
    first = start_worker(name="doomed", extra_env=FAST_RECOVERY)
    search = create_search(ready_space, users["owner"], delay=3.0, budget=4, parallelism=1)
    deadline = time.monotonic() + 120
    while not search.evaluations.filter(state=Evaluation.State.RUNNING).exists():
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the 3-second evaluation
    first.kill()
    start_worker(name="rescuer", extra_env=FAST_RECOVERY)
    search = wait_for_search(search)
    assert search.state == "finished", search.failure_reason
    lost = search.evaluations.filter(error__contains="worker running this evaluation stopped")
    assert lost.count() == 1 and lost.get().retried
    assert_every_evaluation_counted_once(search)
    assert search.evaluations.filter(state=Evaluation.State.DONE, fidelity="hi").count() == 4


@pytest.mark.slow
@pytest.mark.redis
def test_a_redis_restart_mid_search_does_not_stop_the_search(ready_space, start_worker, users) -> None:
    import redis
    from django.conf import settings

    start_worker(name="survivor", extra_env=FAST_RECOVERY)
    search = create_search(ready_space, users["owner"], delay=1.0, budget=6, parallelism=2)
    deadline = time.monotonic() + 120
    while search.evaluations.filter(state=Evaluation.State.DONE).count() < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes down
        client.shutdown(nosave=True)
    time.sleep(1.0)
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"], check=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis did not come back"
            time.sleep(0.2)
    search = wait_for_search(search)
    assert search.state == "finished", search.failure_reason
    assert_every_evaluation_counted_once(search)


@pytest.mark.slow
def test_pause_stops_new_proposals_and_resume_continues(ready_space, start_worker, users) -> None:
    start_worker(name="all")
    search = create_search(ready_space, users["owner"], delay=1.0, budget=6, parallelism=1)
    deadline = time.monotonic() + 120
    while not search.evaluations.filter(state=Evaluation.State.DONE).exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    search_services.search_pause(search=search)
    time.sleep(3.0)  # the evaluation in flight finishes; nothing new may start
    settled = search.evaluations.count()
    time.sleep(3.0)
    assert search.evaluations.count() == settled
    assert not search.evaluations.filter(state=Evaluation.State.QUEUED).exists()
    search_services.search_resume(search=search)
    search = wait_for_search(search)
    assert search.state == "finished"
    assert_every_evaluation_counted_once(search)


@pytest.mark.slow
def test_cancel_kills_running_evaluations(ready_space, start_worker, users) -> None:
    start_worker(name="all")
    search = create_search(ready_space, users["owner"], delay=60.0, budget=3, parallelism=1)
    deadline = time.monotonic() + 120
    while not search.evaluations.filter(state=Evaluation.State.RUNNING).exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    started = time.monotonic()
    search_services.search_cancel(search=search)
    search.refresh_from_db()
    assert search.state == "cancelled"
    assert not search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).exists()
    time.sleep(4.0)
    assert search.evaluations.filter(state=Evaluation.State.DONE).count() == 0
    assert time.monotonic() - started < 30
