"""A real worker shares itself between users: the second user's evaluations do not wait behind all of
the first user's (issue 16, "Many users at once")."""

from __future__ import annotations

import pytest
from django.db import transaction

from searches.models import Evaluation, SearchInstance
from searches.services.steering import enqueue_evaluations
from tests.frontend.factories import make_search, make_space
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def queue_up(search: SearchInstance, n: int) -> None:
    """What a search step does: rows in ``queued`` and one message each, sent when the rows are committed."""
    with transaction.atomic():
        created = [Evaluation.objects.create(search=search, encoding_index=k, fidelity="hi") for k in range(n)]
        enqueue_evaluations([evaluation.id for evaluation in created])


@pytest.mark.parametrize(("fair", "expected"), [
    ("true", ["owner", "teammate", "owner", "teammate", "owner", "owner", "owner", "owner"]),
    ("false", ["owner"] * 6 + ["teammate"] * 2),  # first come, first served: the baseline it replaces
])
def test_one_worker_alternates_between_two_users(start_worker, users, fair: str, expected: list[str]) -> None:
    searches = {}
    for role, n in (("owner", 6), ("teammate", 2)):  # the owner's six are queued first
        searches[role] = make_search(users[role], make_space(users[role]), n_evaluations=0, budget=100)
        SearchInstance.objects.filter(id=searches[role].id).update(parallelism=n)
        queue_up(searches[role], n)
    role_of = {search.id: role for role, search in searches.items()}

    start_worker(queues="gpu", name="gpu", extra_env={"NASWEB_FAIR_SHARE": fair})
    wait_until(lambda: Evaluation.objects.filter(state=Evaluation.State.DONE).count() == 8, 120, interval=0.3,
               message=lambda: str(list(Evaluation.objects.values_list("id", "state", "error"))))
    started = Evaluation.objects.order_by("started_at").values_list("search_id", flat=True)
    assert [role_of[search_id] for search_id in started] == expected
