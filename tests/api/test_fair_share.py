"""Workers are shared fairly: round-robin over users, then over each user's searches; a per-user limit of
running evaluations; the dashboard's "n ahead"; the watchdog leaves held work alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from searches import recovery as search_recovery
from searches import scheduling
from searches.models import Evaluation, SearchInstance
from searches.scheduling import Load, Waiting, fair_order
from tests.support.threads import at_once


def ids(order: list[Waiting]) -> list[int]:
    return [waiting.id for waiting in order]


# user 1 has searches 1 (six waiting, the oldest work) and 3 (two waiting); user 2 has search 2 (two waiting)
QUEUE = [Waiting(i, 1, 1) for i in range(1, 7)] + [Waiting(10, 2, 2), Waiting(11, 2, 2)] + \
    [Waiting(20, 3, 1), Waiting(21, 3, 1)]


def test_the_order_goes_round_the_users_then_round_each_users_searches() -> None:
    # first come first served would start 1..6 before user 2's first evaluation
    assert ids(fair_order(QUEUE).order) == [1, 10, 20, 11, 2, 21, 3, 4, 5, 6]


def test_a_user_with_work_running_or_served_last_waits_for_the_others() -> None:
    assert ids(fair_order(QUEUE, Load(running_by_owner={1: 2})).order)[:3] == [10, 11, 1]
    served_last = Load(last_start_by_owner={1: 1_000.0, 2: 900.0})
    assert ids(fair_order(QUEUE, served_last).order)[:2] == [10, 1]
    search_3_runs = Load(running_by_owner={1: 1}, running_by_search={3: 1})
    assert ids(fair_order(QUEUE, search_3_runs).order)[:3] == [10, 1, 11]


def test_the_limit_holds_a_users_work_until_one_of_theirs_finishes() -> None:
    result = fair_order(QUEUE, Load(running_by_owner={1: 1}), limit=2)
    assert ids(result.order) == [10, 1, 11]
    assert ids(result.held) == [2, 3, 4, 5, 6, 20, 21]
    assert result.ahead()[11] == 2 and result.ahead()[20] is None


def queue_up(search: SearchInstance, n: int, start: int = 0) -> list[int]:
    return [Evaluation.objects.create(search=search, encoding_index=start + k, fidelity="hi").id for k in range(n)]


def claim() -> int | None:
    return scheduling.claim_next(state=Evaluation.State.RUNNING, started_at=timezone.now(),
                                 heartbeat_at=timezone.now(), worker="test")


@pytest.fixture
def two_users_waiting(users, make_search) -> dict[str, SearchInstance]:
    """The owner's search queued six evaluations, then the teammate's search queued two."""
    owner = make_search(owner=users["owner"], n_done=0, n_failed=0, n_running=0)
    teammate = make_search(owner=users["teammate"], n_done=0, n_failed=0, n_running=0)
    queue_up(owner, 6)
    queue_up(teammate, 2)
    return {"owner": owner, "teammate": teammate}


def test_free_workers_alternate_between_users_whatever_each_has_queued(two_users_waiting) -> None:
    owner_of = {search.id: role for role, search in two_users_waiting.items()}
    claimed = [claim() for _ in range(9)]
    assert claimed[-1] is None, "eight evaluations waited"
    roles = [owner_of[Evaluation.objects.get(id=evaluation_id).search_id] for evaluation_id in claimed[:-1]]
    assert roles == ["owner", "teammate", "owner", "teammate", "owner", "owner", "owner", "owner"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_run_more_than_the_limit_of_one_user(users, make_search, settings) -> None:
    settings.NASWEB_MAX_RUNNING_PER_USER = 2
    search = make_search(owner=users["owner"], n_done=0, n_failed=0, n_running=0)
    queue_up(search, 8)
    claimed = at_once(claim, 6)
    assert sorted(c is not None for c in claimed) == [False] * 4 + [True] * 2
    assert search.evaluations.filter(state=Evaluation.State.RUNNING).count() == 2
    # one of them finishes: the next one may start
    Evaluation.objects.filter(id=next(c for c in claimed if c)).update(state=Evaluation.State.DONE)
    assert claim() is not None and claim() is None


def test_the_dashboard_says_how_many_start_before_each_waiting_evaluation(api, two_users_waiting) -> None:
    progress = api("teammate").get(f"/api/searches/{two_users_waiting['teammate'].id}/progress/").json()
    waiting = [row for row in progress["in_flight"] if row["state"] == "queued"]
    # fair order: owner, teammate, owner, teammate, owner, ...
    assert [row["ahead"] for row in waiting] == [1, 3]
    assert progress["running_limit"] is None
    owners = api("owner").get(f"/api/searches/{two_users_waiting['owner'].id}/progress/").json()
    assert [row["ahead"] for row in owners["in_flight"]] == [0, 2, 4, 5, 6, 7]


def test_with_a_limit_the_dashboard_says_which_evaluations_wait_for_the_users_own(api, two_users_waiting,
                                                                                 settings) -> None:
    settings.NASWEB_MAX_RUNNING_PER_USER = 1
    owner_search = two_users_waiting["owner"]
    first = owner_search.evaluations.order_by("id").first()
    Evaluation.objects.filter(id=first.id).update(state=Evaluation.State.RUNNING, started_at=timezone.now())
    progress = api("owner").get(f"/api/searches/{owner_search.id}/progress/").json()
    assert progress["running_limit"] == 1
    assert [row.get("ahead", "running") for row in progress["in_flight"]] == ["running"] + [None] * 5
    teammate = api("teammate").get(f"/api/searches/{two_users_waiting['teammate'].id}/progress/").json()
    assert [row["ahead"] for row in teammate["in_flight"]] == [0, None]


def test_the_watchdog_does_not_resend_work_held_by_its_owners_limit(two_users_waiting, settings) -> None:
    settings.NASWEB_MAX_RUNNING_PER_USER = 1
    Evaluation.objects.filter(state=Evaluation.State.QUEUED).update(queued_at=timezone.now() - timedelta(seconds=60))
    owner_search = two_users_waiting["owner"]
    first = owner_search.evaluations.order_by("id").first()
    Evaluation.objects.filter(id=first.id).update(state=Evaluation.State.RUNNING, started_at=timezone.now(),
                                                  heartbeat_at=timezone.now())
    found = search_recovery.find_lost_work(now=timezone.now(), queue_sizes={"gpu": 0, "search": 1})
    teammate_first = two_users_waiting["teammate"].evaluations.order_by("id").first()
    assert found["evaluations"] == [teammate_first.id]


def test_first_come_first_served_when_fair_share_is_off(two_users_waiting, settings) -> None:
    settings.NASWEB_FAIR_SHARE = False
    assert not scheduling.fair_share_enabled()
    teammate_last = two_users_waiting["teammate"].evaluations.order_by("id").last()
    assert scheduling.claim_own(teammate_last.id, state=Evaluation.State.RUNNING)
    assert not scheduling.claim_own(teammate_last.id, state=Evaluation.State.RUNNING), "a duplicate message"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # messages are sent when the transaction commits
def test_a_search_holds_one_place_in_the_step_queue_however_many_evaluations_finish(make_search) -> None:
    """Each finish asks for a step; while one waits, more finishes send none (it reads them all when it
    starts), so a search with 8 in flight does not put 8 steps in front of another search's one."""
    from nasweb.recovery import queue_sizes
    from searches import services
    from searches.services.steering import enqueue_step

    search = make_search(state=SearchInstance.State.PAUSED, n_running=0)  # paused: its step proposes nothing

    def waiting_steps() -> int:
        sizes = queue_sizes(("search",))
        assert sizes is not None, "the broker is not reachable"
        return sizes["search"]

    before = waiting_steps()
    for _ in range(3):
        enqueue_step(search.id)
    assert waiting_steps() == before + 1
    search.refresh_from_db()
    assert search.step_pending
    services.search_step(search_id=search.id)  # the step starts: the next finish needs a new one
    search.refresh_from_db()
    assert not search.step_pending
    enqueue_step(search.id)
    assert waiting_steps() == before + 2


def test_the_watchdog_resends_a_step_marked_waiting_whose_message_was_lost(make_search) -> None:
    search = make_search(n_running=1)
    SearchInstance.objects.filter(id=search.id).update(step_pending=True,
                                                       updated_at=timezone.now() - timedelta(seconds=30))
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes={"gpu": 1, "search": 0})["steps"] == [
        search.id]
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes={"gpu": 1, "search": 1})["steps"] == []
    SearchInstance.objects.filter(id=search.id).update(step_pending=False)
    assert search_recovery.find_lost_work(now=timezone.now(), queue_sizes={"gpu": 1, "search": 0})["steps"] == []
