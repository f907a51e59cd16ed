"""Lost-work rules of search spaces: profiling chunks whose worker died or whose message vanished, lost validations."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from nasweb.recovery import QueueSizes

#: queues whose waiting messages these rules look at
QUEUES = ("profile",)


def find_lost_work(*, now: datetime, queue_sizes: QueueSizes) -> dict[str, list[int]]:
    """Ids of the profiling chunks and spaces whose message was lost, by kind (``chunks``, ``spaces``).

    * ``running`` chunks silent for ``NASWEB_HEARTBEAT_STALE_S`` -> their worker died;
    * ``queued`` chunks of a space profiling and unchanged for that long, while ``profile`` is empty;
    * spaces still ``uploaded`` after that long, while ``profile`` is empty: the validation was lost.
    """
    from spaces.models import ProfileChunk, SearchSpace

    stale = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    lost = ProfileChunk.objects.filter(state=ProfileChunk.State.RUNNING, heartbeat_at__lt=stale)
    spaces: list[int] = []
    if queue_sizes["profile"] == 0:
        lost = lost | ProfileChunk.objects.filter(
            state=ProfileChunk.State.QUEUED, space__state=SearchSpace.State.PROFILING, space__updated_at__lt=stale)
        uploaded = SearchSpace.objects.filter(state=SearchSpace.State.UPLOADED, updated_at__lt=stale)
        spaces = list(uploaded.values_list("id", flat=True).order_by("id")[:100])
    return {"chunks": list(lost.values_list("id", flat=True).order_by("id")[:500]), "spaces": spaces}


def resend_lost_work(found: dict[str, list[int]]) -> None:
    """Send the tasks of :func:`find_lost_work`'s answer again."""
    from spaces.tasks import profile_chunk, validate_space

    for space_id in found.get("spaces", []):
        validate_space.delay(space_id)
    for chunk_id in found.get("chunks", []):
        profile_chunk.delay(chunk_id)
