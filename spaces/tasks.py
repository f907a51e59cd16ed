"""Celery tasks of the space pipeline. Each takes an id, calls one service, and is idempotent."""

from __future__ import annotations

from celery import shared_task

from spaces import services


@shared_task(name="spaces.validate", queue="profile", time_limit=900)
def validate_space(space_id: int) -> None:
    services.space_validate(space_id=space_id)


@shared_task(name="spaces.profile_chunk", queue="profile", time_limit=4 * 3600)
def profile_chunk(chunk_id: int) -> None:
    services.space_profile_chunk(chunk_id=chunk_id)


@shared_task(name="spaces.pretrain", queue="pretrain", time_limit=4 * 3600)
def pretrain_space(space_id: int) -> None:
    services.space_pretrain(space_id=space_id)


@shared_task(name="spaces.summarize_network", queue="profile", time_limit=600)
def summarize_network(summary_id: int) -> None:
    services.network_summary_compute(summary_id=summary_id)
