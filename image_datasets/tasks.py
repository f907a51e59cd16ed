"""Celery task of users' image datasets: check an upload in a worker (never in the web process)."""

from __future__ import annotations

from celery import shared_task

from image_datasets import services


@shared_task(name="image_datasets.check", queue="profile", time_limit=3600)
def check_image_dataset(dataset_id: int) -> None:
    services.image_dataset_check(dataset_id=dataset_id)
