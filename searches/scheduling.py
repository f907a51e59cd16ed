"""Fair share of the workers between users and between searches.

Evaluations wait in the database (``queued``). A message on the ``gpu`` queue is a *token*: it asks a
free worker to run the next evaluation in fair order, which need not be the one the message was sent
for (its id is a hint, used only to take over an evaluation whose worker died). So one user who starts
a search with parallelism 50 does not put 50 messages in front of everybody else: each free worker
takes

1. among the users below their limit of running evaluations (``NASWEB_MAX_RUNNING_PER_USER``, 0 = no
   limit), the one with the fewest evaluations running now; ties go to the one whose last evaluation
   started longest ago (never: first);
2. among that user's searches, the one chosen by the same rule;
3. that search's oldest waiting evaluation.

So with more users than workers the workers go round the users, and inside each user round the
searches, however many evaluations each has waiting. The same rule gives the dashboard's
"waiting for a worker (n ahead)". Claims are serialised by a PostgreSQL advisory lock, so the per-user
limit holds with any number of workers; every claim is also a conditional update, so a lost race (on
SQLite) only costs another try.

``NASWEB_FAIR_SHARE=false`` restores first-come-first-served: each message runs its own evaluation
(the benchmark's baseline).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max

from searches.models import Evaluation, SearchInstance

#: key of the advisory lock that serialises claims (any constant unique to this use)
_CLAIM_LOCK_KEY = 0x6E617377  # "nasw"


@dataclass(frozen=True)
class Waiting:
    """A queued evaluation as the scheduler sees it."""

    id: int
    search_id: int
    owner_id: int


@dataclass
class FairOrder:
    """The order in which waiting evaluations would start if no evaluation finished meanwhile.

    ``order`` lists the evaluations that would start, first one first; ``held`` are the ones whose owner
    reaches the per-user limit before their turn: they wait for one of the owner's own evaluations to finish.
    """

    order: list[Waiting] = field(default_factory=list)
    held: list[Waiting] = field(default_factory=list)

    def ahead(self) -> dict[int, int | None]:
        """Evaluation id -> how many evaluations start before it (``None``: held by its owner's limit)."""
        positions: dict[int, int | None] = {waiting.id: n for n, waiting in enumerate(self.order)}
        positions.update({waiting.id: None for waiting in self.held})
        return positions


@dataclass
class Load:
    """What the workers are doing for each user and search: evaluations running now, and when the last
    one started (seconds; absent = never), the round-robin's memory."""

    running_by_owner: dict[int, int] = field(default_factory=dict)
    running_by_search: dict[int, int] = field(default_factory=dict)
    last_start_by_owner: dict[int, float] = field(default_factory=dict)
    last_start_by_search: dict[int, float] = field(default_factory=dict)


def fair_order(waiting: Iterable[Waiting], load: Load | None = None, *, limit: int = 0,
               take: int | None = None) -> FairOrder:
    """Hand out ``waiting`` in fair order, as many as ``take`` (all when ``None``).

    The next evaluation goes to the user with the fewest running evaluations, ties to the one served
    longest ago (never served first), then the oldest waiting; inside that user, to the search chosen by
    the same rule; inside that search, its oldest waiting evaluation. Each hand-out counts as running and
    as the latest start, so the order is a round-robin. ``limit``: most running per user (0 = none).
    Pure: the callers read the database.
    """
    load = load or Load()
    queues: dict[int, dict[int, deque[Waiting]]] = defaultdict(lambda: defaultdict(deque))
    for item in sorted(waiting, key=lambda w: w.id):
        queues[item.owner_id][item.search_id].append(item)
    running_owner = Counter(load.running_by_owner)
    running_search = Counter(load.running_by_search)
    last_owner = dict(load.last_start_by_owner)
    last_search = dict(load.last_start_by_search)
    clock = max([*last_owner.values(), *last_search.values(), 0.0])  # virtual time of the hand-outs
    result = FairOrder()

    def owner_key(owner: int) -> tuple[int, float, int, int]:
        oldest = min(queue[0].id for queue in queues[owner].values())
        return running_owner[owner], last_owner.get(owner, -math.inf), oldest, owner

    def search_key(search: int, queue: deque[Waiting]) -> tuple[int, float, int, int]:
        return running_search[search], last_search.get(search, -math.inf), queue[0].id, search

    heap = [owner_key(owner) for owner in queues]
    heapq.heapify(heap)
    while heap and (take is None or len(result.order) < take):
        owner = heapq.heappop(heap)[-1]
        if limit and running_owner[owner] >= limit:
            result.held.extend(item for queue in queues.pop(owner).values() for item in queue)
            continue
        searches = queues[owner]
        search = min(searches, key=lambda s: search_key(s, searches[s]))
        item = searches[search].popleft()
        if not searches[search]:
            del searches[search]
        result.order.append(item)
        clock += 1.0
        running_owner[owner] += 1
        running_search[search] += 1
        last_owner[owner] = last_search[search] = clock
        if searches:
            heapq.heappush(heap, owner_key(owner))
        else:
            del queues[owner]
    result.held.sort(key=lambda w: w.id)
    return result


def fair_share_enabled() -> bool:
    return bool(settings.NASWEB_FAIR_SHARE)


def limit_per_user() -> int:
    return int(settings.NASWEB_MAX_RUNNING_PER_USER)


def _live() -> dict[str, object]:
    """Filter of the evaluations whose search may still start work."""
    return {"search__state__in": SearchInstance.ACTIVE_STATES}


def current_load() -> Load:
    """Running evaluations and latest starts per user and per search, over the searches still active."""
    live = Evaluation.objects.filter(**_live())
    running = live.filter(state=Evaluation.State.RUNNING)
    started = live.filter(started_at__isnull=False)

    def seconds(rows: Iterable[tuple[int, datetime]]) -> dict[int, float]:
        return {key: when.timestamp() for key, when in rows}

    return Load(
        running_by_owner=dict(running.values("search__owner_id").annotate(n=Count("id"))
                              .values_list("search__owner_id", "n")),
        running_by_search=dict(running.values("search_id").annotate(n=Count("id")).values_list("search_id", "n")),
        last_start_by_owner=seconds(started.values("search__owner_id").annotate(at=Max("started_at"))
                                    .values_list("search__owner_id", "at")),
        last_start_by_search=seconds(started.values("search_id").annotate(at=Max("started_at"))
                                     .values_list("search_id", "at")),
    )


def current_order(*, take: int | None = None) -> FairOrder:
    """The fair order of every evaluation waiting for a worker now (read from the database)."""
    waiting = [Waiting(*row) for row in Evaluation.objects.filter(state=Evaluation.State.QUEUED, **_live())
               .values_list("id", "search_id", "search__owner_id")]
    if not waiting:
        return FairOrder()
    return fair_order(waiting, current_load(), limit=limit_per_user(), take=take)


def _lock_claims() -> None:
    """Serialise claims until the transaction ends (PostgreSQL; SQLite serialises writers itself)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK_KEY])


def claim_next(**fields: object) -> int | None:
    """Mark the next evaluation in fair order ``running`` with ``fields`` and return its id; ``None`` when
    nothing waits (or everything waiting is held by its owner's limit)."""
    for _ in range(5):  # a conditional update lost to another claimer (SQLite): take the next in order
        with transaction.atomic():
            _lock_claims()
            order = current_order(take=1).order
            if not order:
                return None
            if Evaluation.objects.filter(id=order[0].id, state=Evaluation.State.QUEUED).update(**fields):
                return order[0].id
    return None


def claim_own(evaluation_id: int, **fields: object) -> bool:
    """Mark exactly this queued evaluation ``running`` (first come, first served; and the inline drivers).
    Under the claim lock too, so fair and first-come claimers never overrun a user's limit together."""
    with transaction.atomic():
        _lock_claims()
        return bool(Evaluation.objects.filter(id=evaluation_id, state=Evaluation.State.QUEUED).update(**fields))


def waiting_for_tokens() -> list[int]:
    """Ids of the queued evaluations a free worker would start now (not those held by their owner's limit),
    oldest first: the watchdog re-sends a message for these when the ``gpu`` queue is empty."""
    return sorted(waiting.id for waiting in current_order().order)


def positions_of(evaluation_ids: Iterable[int]) -> dict[int, int | None]:
    """For each of these waiting evaluations: how many evaluations (of every user) start before it, or
    ``None`` when it waits for one of its owner's running evaluations (the per-user limit)."""
    ahead = current_order().ahead()
    return {evaluation_id: ahead.get(evaluation_id) for evaluation_id in evaluation_ids}
