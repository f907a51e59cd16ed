"""Searches run through real workers: to budget, through a killed worker, through a Redis restart."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from searches import services as search_services
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec
from searches.storage import EvaluationRowStorage
from spaces.models import SearchSpace
from tests.support.waiting import wait_until
from tests.web.test_space_pipeline import tiny_encodings

EVALUATOR = """
import time

def evaluate(encoding, fidelity):
    width, depth, activation = encoding
    print("evaluating", encoding, fidelity, flush=True)
    time.sleep({delay})
    return width * 0.1 + depth + (1.0 if activation == "relu" else 0.0) - (0.5 if fidelity == "lo" else 0.0)
"""
# Ticks into its log (the child's stdout, which the worker writes outside any sandbox) every 0.2 s for 60 s.
TICKING_EVALUATOR = """
import time

def evaluate(encoding, fidelity):
    for tick in range(300):
        print("tick", tick, flush=True)
        time.sleep(0.2)
    print("evaluator finished", flush=True)
    return 1.0
"""
TICK_S = 0.2
FAST_RECOVERY = {"NASWEB_HEARTBEAT_STALE_S": "6", "NASWEB_RECOVERY_INTERVAL_S": "1"}
IN_FLIGHT = (Evaluation.State.QUEUED, Evaluation.State.RUNNING)


def expected_value(index: int, fidelity: str) -> float:
    width, depth, activation = tiny_encodings()[index]
    return width * 0.1 + depth + (1.0 if activation == "relu" else 0.0) - (0.5 if fidelity == "lo" else 0.0)


def wait_for_search(search: SearchInstance, timeout: float = 300.0) -> SearchInstance:
    def ended() -> bool:
        search.refresh_from_db()
        return search.state not in SearchInstance.ACTIVE_STATES

    def stuck() -> str:
        states = Counter(search.evaluations.values_list("state", flat=True))
        return f"search stuck in {search.state}; evaluations {dict(states)}"

    wait_until(ended, timeout, interval=0.3, message=stuck)
    return search


def evaluation_log(evaluation: Evaluation) -> str:
    """What the evaluation's child has written so far (empty before its log file exists)."""
    evaluation.refresh_from_db()
    path = Path(evaluation.log_file) if evaluation.log_file else None
    return path.read_text(errors="replace") if path is not None and path.exists() else ""


def running_evaluation_saying(search: SearchInstance, text: str, timeout: float = 120.0,
                              message: str | Callable[[], str] = "") -> Evaluation:
    """The running evaluation whose child has written ``text`` into its log: its code is running now."""

    def found() -> Evaluation | None:
        for evaluation in search.evaluations.filter(state=Evaluation.State.RUNNING):
            if text in evaluation_log(evaluation):
                return evaluation
        return None

    return wait_until(found, timeout, message=message or f"no running evaluation wrote {text!r}")


def wait_until_log_stops_growing(evaluation: Evaluation, quiet_s: float, timeout: float) -> str:
    """Wait until the evaluation's log has not grown for ``quiet_s`` seconds, and return it."""
    last = {"length": -1, "since": time.monotonic()}

    def quiet() -> bool:
        length = len(evaluation_log(evaluation))
        if length != last["length"]:
            last.update(length=length, since=time.monotonic())
            return False
        return time.monotonic() - last["since"] >= quiet_s

    wait_until(quiet, timeout, message=lambda: f"the log still grows:\n{evaluation_log(evaluation)[-300:]}")
    return evaluation_log(evaluation)


def assert_every_evaluation_counted_once(search: SearchInstance) -> list[Evaluation]:
    done = list(search.evaluations.filter(state=Evaluation.State.DONE))
    keys = Counter((e.encoding_index, e.fidelity) for e in done)
    assert max(keys.values()) == 1, f"an encoding was evaluated twice: {keys.most_common(3)}"
    finished = search.evaluations.exclude(seq=None)
    seqs = sorted(finished.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), "finish order has gaps or repeats"
    seen = [record["id"] for record in EvaluationRowStorage(search).history()]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(search.evaluations.filter(retried=False, seq__isnull=False).values_list("id", flat=True))
    for evaluation in done:
        assert evaluation.value == pytest.approx(expected_value(evaluation.encoding_index, evaluation.fidelity))
    spent = sum(e.cost for e in done)
    assert search.spent == pytest.approx(spent)
    return done


def create_search(space: SearchSpace, owner, *, delay: float = 0.0, budget: float = 5, parallelism: int = 2,
                  lo_fi_cost: float | None = None, evaluator_source: str | None = None) -> SearchInstance:
    return search_services.search_create(
        owner=owner, space=space, spec=SearchSpec(
            name="tiny search", evaluator_kind="module",
            evaluator_source=evaluator_source or EVALUATOR.format(delay=delay), budget=budget,
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
    # Killed just after its child printed its first line: well inside the 3-second evaluation.
    running_evaluation_saying(search, "evaluating", message=first.log)
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
    wait_until(lambda: search.evaluations.filter(state=Evaluation.State.DONE).count() >= 2, 120)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes down
        client.shutdown(nosave=True)

    def redis_down() -> bool:
        try:
            client.ping()
        except redis.ConnectionError:
            return True
        return False

    wait_until(redis_down, 30, message="redis did not go down")
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"], check=True)
    wait_until(lambda: not redis_down(), 30, interval=0.2, message="redis did not come back")
    search = wait_for_search(search)
    assert search.state == "finished", search.failure_reason
    assert_every_evaluation_counted_once(search)


@pytest.mark.slow
def test_pause_stops_new_proposals_and_resume_continues(ready_space, start_worker, users) -> None:
    worker = start_worker(name="all")
    search = create_search(ready_space, users["owner"], delay=1.0, budget=6, parallelism=1)
    wait_until(lambda: search.evaluations.filter(state=Evaluation.State.DONE).exists(), 120, message=worker.log)
    search_services.search_pause(search=search)
    # The evaluation in flight finishes; nothing new may start.
    wait_until(lambda: not search.evaluations.filter(state__in=IN_FLIGHT).exists(), 60, message=worker.log)
    settled = search.evaluations.count()
    # The last evaluation's finish enqueued a search step; once that step has run, it has seen the pause
    # and had its chance to propose.
    last = search.evaluations.exclude(finished_at=None).latest("finished_at")
    wait_until(lambda: worker.task_succeeded_after("searches.step", last.task_id), 60, message=worker.log)
    assert search.evaluations.count() == settled
    assert not search.evaluations.filter(state=Evaluation.State.QUEUED).exists()
    search_services.search_resume(search=search)
    search = wait_for_search(search)
    assert search.state == "finished"
    assert_every_evaluation_counted_once(search)


@pytest.mark.slow
def test_cancel_kills_running_evaluations(ready_space, start_worker, users) -> None:
    worker = start_worker(name="all")
    search = create_search(ready_space, users["owner"], budget=3, parallelism=1, evaluator_source=TICKING_EVALUATOR)
    evaluation = running_evaluation_saying(search, "tick 2\n", message=worker.log)
    started = time.monotonic()
    search_services.search_cancel(search=search)
    search.refresh_from_db()
    assert search.state == "cancelled"
    assert not search.evaluations.filter(state__in=IN_FLIGHT).exists()
    # A killed child stops ticking; a live one writes a tick every 0.2 s for a minute. Ten missing ticks
    # in a row, within the 30 s the old check allowed, prove the kill.
    log = wait_until_log_stops_growing(evaluation, quiet_s=10 * TICK_S, timeout=30)
    assert time.monotonic() - started < 30
    ticks = re.findall(r"^tick (\d+)$", log, flags=re.MULTILINE)
    assert ticks and int(ticks[-1]) < 150, ticks[-3:]  # killed in under 30 of its 60 seconds
    assert "evaluator finished" not in log
    assert search.evaluations.filter(state=Evaluation.State.DONE).count() == 0
