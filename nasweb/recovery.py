"""Finding work whose message was lost and sending it again.

A message can vanish: a worker SIGKILLed while holding it (the filesystem broker deletes a
message when it hands it out), or a Redis restart without persistence. The database always
knows what should be happening, so each worker runs a small watchdog thread that compares:

* evaluations and profiling chunks ``running`` with a stale heartbeat -> their worker died:
  send the task again (the task takes the work over as a new attempt);
* evaluations and chunks ``queued`` for a while while their queue holds no message -> the
  message is gone: send it again;
* active searches with nothing in flight and no recent change -> the search step was lost:
  send a step.

Duplicated messages are harmless: every task claims its work with a conditional update.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def _queue_sizes(queues: tuple[str, ...]) -> dict[str, int | None]:
    """Messages waiting in each queue (None when the broker cannot tell)."""
    from nasweb.celery import app

    sizes: dict[str, int | None] = {}
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues:
                try:
                    sizes[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # queue unknown to this transport yet: nothing waits in it
                    sizes[queue] = 0
    except Exception as exc:  # broker down: try again next round
        logger.info("recovery: broker not reachable (%s)", exc)
        return {queue: None for queue in queues}
    return sizes


def recover_lost_work() -> dict[str, int]:
    """One watchdog round; returns how many messages of each kind were sent again."""
    from searches.models import Evaluation, SearchInstance
    from searches.tasks import run_evaluation, search_step
    from spaces.models import ProfileChunk, SearchSpace
    from spaces.tasks import profile_chunk, validate_space

    now = timezone.now()
    stale = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    sizes = _queue_sizes(("gpu", "profile", "search"))
    if any(size is None for size in sizes.values()):
        return {}
    sent = {"evaluations": 0, "chunks": 0, "steps": 0, "spaces": 0}

    lost_evaluations = Evaluation.objects.filter(state=Evaluation.State.RUNNING, heartbeat_at__lt=stale)
    if sizes["gpu"] == 0:
        lost_evaluations = lost_evaluations | Evaluation.objects.filter(
            state=Evaluation.State.QUEUED, queued_at__lt=stale,
            search__state__in=(SearchInstance.State.RUNNING, SearchInstance.State.PAUSED))
    for evaluation_id in lost_evaluations.values_list("id", flat=True)[:500]:
        run_evaluation.delay(evaluation_id)
        sent["evaluations"] += 1

    lost_chunks = ProfileChunk.objects.filter(state=ProfileChunk.State.RUNNING, heartbeat_at__lt=stale)
    if sizes["profile"] == 0:
        lost_chunks = lost_chunks | ProfileChunk.objects.filter(
            state=ProfileChunk.State.QUEUED, space__state=SearchSpace.State.PROFILING,
            space__updated_at__lt=stale)
        for space_id in SearchSpace.objects.filter(state=SearchSpace.State.UPLOADED, updated_at__lt=stale) \
                .values_list("id", flat=True)[:100]:
            validate_space.delay(space_id)
            sent["spaces"] += 1
    for chunk_id in lost_chunks.values_list("id", flat=True)[:500]:
        profile_chunk.delay(chunk_id)
        sent["chunks"] += 1

    if sizes["search"] == 0:
        idle = SearchInstance.objects.filter(
            state__in=(SearchInstance.State.QUEUED, SearchInstance.State.RUNNING), updated_at__lt=stale,
        ).exclude(evaluations__state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING))
        for search_id in idle.values_list("id", flat=True).distinct()[:500]:
            search_step.delay(search_id)
            sent["steps"] += 1

    if any(sent.values()):
        logger.warning("recovery: sent lost work again: %s", sent)
    return sent


class Watchdog(threading.Thread):
    """Runs :func:`recover_lost_work` every ``NASWEB_RECOVERY_INTERVAL_S`` seconds in a worker."""

    def __init__(self) -> None:
        super().__init__(name="nasweb-recovery", daemon=True)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(settings.NASWEB_RECOVERY_INTERVAL_S):
            try:
                recover_lost_work()
            except Exception:  # the watchdog must outlive a database hiccup
                logger.exception("recovery round failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop_event.set()
