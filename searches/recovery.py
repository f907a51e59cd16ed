"""Lost-work rules of searches: evaluations whose worker died or whose message vanished, lost search steps."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from nasweb.recovery import QueueSizes

#: queues whose waiting messages these rules look at
QUEUES = ("gpu", "search")


def find_lost_work(*, now: datetime, queue_sizes: QueueSizes) -> dict[str, list[int]]:
    """Ids of the evaluations and searches whose message was lost, by kind (``evaluations``, ``steps``).

    * ``running`` evaluations silent for ``NASWEB_HEARTBEAT_STALE_S`` -> their worker died: the task
      takes them over as a new attempt;
    * ``queued`` evaluations of live searches, older than that, that a free worker would start (not held by
      their owner's limit), while the ``gpu`` queue is empty;
    * active searches with nothing in flight, unchanged for twice that, while ``search`` is empty:
      the search step was lost. Twice, because a step refitting the surrogate does not beat;
    * active searches whose step is marked waiting (``step_pending``), unchanged for that long, while
      ``search`` is empty: its message was lost.
    """
    from searches import scheduling
    from searches.models import Evaluation, SearchInstance

    stale = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    lost = Evaluation.objects.filter(state=Evaluation.State.RUNNING, heartbeat_at__lt=stale)
    if queue_sizes["gpu"] == 0:
        # not those held by their owner's limit of running evaluations: no worker may start them yet
        lost = lost | Evaluation.objects.filter(
            id__in=scheduling.waiting_for_tokens(), queued_at__lt=stale,
            search__state__in=(SearchInstance.State.RUNNING, SearchInstance.State.PAUSED))
    steps: list[int] = []
    if queue_sizes["search"] == 0:
        idle = SearchInstance.objects.filter(
            state__in=(SearchInstance.State.QUEUED, SearchInstance.State.RUNNING),
            updated_at__lt=now - timedelta(seconds=2 * settings.NASWEB_HEARTBEAT_STALE_S),
        ).exclude(evaluations__state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING))
        # a step marked waiting while the step queue is empty: its message was lost
        lost_step = SearchInstance.objects.filter(
            state__in=SearchInstance.ACTIVE_STATES, step_pending=True,
            updated_at__lt=now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S))
        steps = sorted(set(idle.values_list("id", flat=True)) | set(lost_step.values_list("id", flat=True)))[:500]
    return {"evaluations": list(lost.values_list("id", flat=True).order_by("id")[:500]), "steps": steps}


def resend_lost_work(found: dict[str, list[int]]) -> None:
    """Send the tasks of :func:`find_lost_work`'s answer again."""
    from searches.tasks import run_evaluation, search_step

    for evaluation_id in found.get("evaluations", []):
        run_evaluation.delay(evaluation_id)
    for search_id in found.get("steps", []):
        search_step.delay(search_id)
