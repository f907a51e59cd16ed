"""A dataset check whose worker died or whose message vanished is found by the watchdog and sent again;
a check another live worker holds is not run twice."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from image_datasets import recovery, services
from image_datasets.models import ImageDataset
from tests.datasets.archives import class_folder_files, zip_bytes

EMPTY = {"profile": 0}
BUSY = {"profile": 2}


def silent_for(seconds: float) -> timezone.datetime:
    return timezone.now() - timedelta(seconds=seconds)


@pytest.fixture
def validating(users, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NASWEB_DATASET_DIRS = [tmp_path / "datasets"]

    def make(name: str, *, heartbeat_s: float | None, age_s: float = 60) -> ImageDataset:
        dataset = ImageDataset(uid=uuid.uuid4(), owner=users["owner"], name=name)
        dataset.archive.save("archive", ContentFile(zip_bytes(class_folder_files())), save=False)
        dataset.save()
        ImageDataset.objects.filter(id=dataset.id).update(
            created_at=silent_for(age_s), heartbeat_at=None if heartbeat_s is None else silent_for(heartbeat_s))
        return ImageDataset.objects.get(id=dataset.id)

    return make


def test_the_watchdog_runs_the_dataset_rules() -> None:
    from nasweb.recovery import app_rules

    assert "image_datasets.recovery" in [module.__name__ for module in app_rules()]


def test_a_check_silent_for_ten_seconds_is_lost_and_a_beating_one_is_not(validating) -> None:
    silent = validating("silent", heartbeat_s=11)
    validating("beating", heartbeat_s=3)
    assert recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY) == {"datasets": [silent.id]}


def test_a_never_started_check_is_sent_again_only_when_the_queue_is_empty(validating) -> None:
    waiting = validating("waiting", heartbeat_s=None)
    validating("new", heartbeat_s=None, age_s=2)
    assert recovery.find_lost_work(now=timezone.now(), queue_sizes=BUSY) == {"datasets": []}
    assert recovery.find_lost_work(now=timezone.now(), queue_sizes=EMPTY) == {"datasets": [waiting.id]}


def test_a_check_held_by_a_live_worker_is_not_run_twice_and_a_dead_workers_is(validating) -> None:
    held = validating("held", heartbeat_s=2)
    services.image_dataset_check(dataset_id=held.id)
    held.refresh_from_db()
    assert held.state == "validating" and held.archive  # left to the worker that beats

    orphan = validating("orphan", heartbeat_s=30)
    services.image_dataset_check(dataset_id=orphan.id)
    orphan.refresh_from_db()
    assert orphan.state == "ready", orphan.failure_reason
