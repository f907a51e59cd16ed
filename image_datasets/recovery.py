"""Lost-work rules of users' image datasets: checks whose worker died or whose message vanished."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from nasweb.recovery import QueueSizes

#: queues whose waiting messages these rules look at
QUEUES = ("profile",)


def find_lost_work(*, now: datetime, queue_sizes: QueueSizes) -> dict[str, list[int]]:
    """Ids of the datasets whose check was lost (``datasets``).

    * ``validating`` with a heartbeat older than ``NASWEB_HEARTBEAT_STALE_S`` -> the checking worker died;
    * ``validating``, never started and older than that, while ``profile`` is empty -> the message was lost.
    """
    from image_datasets.models import ImageDataset

    stale = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    lost = Q(heartbeat_at__lt=stale)
    if queue_sizes["profile"] == 0:
        lost |= Q(heartbeat_at__isnull=True, created_at__lt=stale)
    found = ImageDataset.objects.filter(lost, state=ImageDataset.State.VALIDATING)
    return {"datasets": list(found.values_list("id", flat=True).order_by("id")[:100])}


def resend_lost_work(found: dict[str, list[int]]) -> None:
    """Send the checks of :func:`find_lost_work`'s answer again."""
    from image_datasets.tasks import check_image_dataset

    for dataset_id in found.get("datasets", []):
        check_image_dataset.delay(dataset_id)
