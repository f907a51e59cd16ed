"""Each app's lost-work rules (spaces/recovery.py, searches/recovery.py) and the watchdog that runs them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nasweb.recovery import app_rules
from searches import recovery as search_recovery
from searches.models import Evaluation, SearchInstance
from spaces import recovery as space_recovery
from spaces.models import ProfileChunk, SearchSpace
from tests.frontend.factories import make_search, make_space

EMPTY = {"gpu": 0, "search": 0, "profile": 0}
BUSY = {"gpu": 3, "search": 1, "profile": 2}


@pytest.fixture
def search(users) -> SearchInstance:
    return make_search(users["owner"], make_space(users["owner"]), n_evaluations=3, in_flight=2)


def silent_for(seconds: float) -> timezone.datetime:
    return timezone.now() - timedelta(seconds=seconds)


def test_the_watchdog_runs_the_rules_of_spaces_and_searches() -> None:
    assert [module.__name__ for module in app_rules()] == ["spaces.recovery", "searches.recovery",
                                                           "image_datasets.recovery"]
    for module in app_rules():
        assert module.QUEUES and callable(module.find_lost_work) and callable(module.resend_lost_work)


def test_a_running_evaluation_silent_for_ten_seconds_is_lost_and_one_beating_is_not(search) -> None:
    beating, silent = search.evaluations.filter(state=Evaluation.State.RUNNING).order_by("id")
    Evaluation.objects.filter(id=beating.id).update(heartbeat_at=silent_for(4))
    Evaluation.objects.filter(id=silent.id).update(heartbeat_at=silent_for(11))
    found = search_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)
    assert found["evaluations"] == [silent.id]


def test_the_default_rules_notice_a_dead_worker_within_twenty_seconds(settings) -> None:
    # the worst case: the heartbeat went stale just after a watchdog round
    assert settings.NASWEB_HEARTBEAT_STALE_S + settings.NASWEB_RECOVERY_INTERVAL_S < 20


def test_a_queued_evaluation_is_sent_again_only_when_its_queue_is_empty(search) -> None:
    queued = Evaluation.objects.create(search=search, encoding_index=7, fidelity="hi", state=Evaluation.State.QUEUED)
    Evaluation.objects.filter(id=queued.id).update(queued_at=silent_for(30))
    Evaluation.objects.filter(state=Evaluation.State.RUNNING).update(heartbeat_at=timezone.now())
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)["evaluations"] == []
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY)["evaluations"] == [queued.id]


def test_a_search_with_nothing_in_flight_and_no_change_gets_its_step_again(search) -> None:
    search.evaluations.filter(state=Evaluation.State.RUNNING).update(state=Evaluation.State.DONE)
    SearchInstance.objects.filter(id=search.id).update(updated_at=silent_for(5))
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY)["steps"] == []
    SearchInstance.objects.filter(id=search.id).update(updated_at=silent_for(25))
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)["steps"] == []
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY)["steps"] == [search.id]


def test_a_finished_search_is_never_stepped_again(search) -> None:
    search.evaluations.filter(state=Evaluation.State.RUNNING).update(state=Evaluation.State.DONE)
    SearchInstance.objects.filter(id=search.id).update(state=SearchInstance.State.FINISHED, updated_at=silent_for(600))
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY) == {"evaluations": [], "steps": []}


def test_a_running_profiling_chunk_silent_for_ten_seconds_is_lost(users) -> None:
    space = make_space(users["owner"], state="profiling")
    beating = ProfileChunk.objects.create(space=space, position=0, indices=[0, 1], state=ProfileChunk.State.RUNNING,
                                          heartbeat_at=silent_for(3))
    silent = ProfileChunk.objects.create(space=space, position=1, indices=[2, 3], state=ProfileChunk.State.RUNNING,
                                         heartbeat_at=silent_for(12))
    found = space_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)
    assert found["chunks"] == [silent.id] and beating.id not in found["chunks"]


def test_a_space_stuck_uploaded_gets_its_validation_again_when_the_queue_is_empty(users) -> None:
    space = make_space(users["owner"], state="uploaded")
    SearchSpace.objects.filter(id=space.id).update(updated_at=silent_for(30))
    assert space_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)["spaces"] == []
    assert space_recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY)["spaces"] == [space.id]


def test_keep_beating_beats_from_a_thread_until_the_block_ends() -> None:
    import time

    from nasweb.recovery import keep_beating

    beats: list[float] = []
    with keep_beating(lambda: beats.append(time.monotonic()), every=0.05):
        time.sleep(0.4)
    count = len(beats)
    assert count >= 4
    time.sleep(0.2)
    assert len(beats) == count  # stopped with the block


@pytest.mark.django_db(transaction=True)
def test_work_that_waits_beats_and_is_not_taken_for_lost(users) -> None:
    import time

    from nasweb.recovery import keep_beating

    search = make_search(users["owner"], make_space(users["owner"]), n_evaluations=1, in_flight=1)
    waiting = search.evaluations.get(state=Evaluation.State.RUNNING)
    Evaluation.objects.filter(id=waiting.id).update(heartbeat_at=silent_for(30))
    with keep_beating(lambda: Evaluation.objects.filter(id=waiting.id).update(heartbeat_at=timezone.now()),
                      every=0.1):
        time.sleep(0.5)  # e.g. waiting for a GPU: the caller itself does not tick
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY)["evaluations"] == []
