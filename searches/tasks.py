"""Celery tasks that drive searches. Each takes an id, calls one service, and is idempotent."""

from __future__ import annotations

from celery import Task, shared_task

from searches import services


@shared_task(name="searches.step", queue="search", time_limit=900)
def search_step(search_id: int) -> None:
    services.search_step(search_id=search_id)


@shared_task(bind=True, name="searches.run_evaluation", queue="gpu", time_limit=7 * 24 * 3600)
def run_evaluation(self: Task, evaluation_id: int) -> None:
    """Run the next evaluation in fair order; ``evaluation_id`` (0: none) is a hint that matters only for
    taking over an evaluation whose worker died, or without fair share (``NASWEB_FAIR_SHARE=false``)."""
    services.evaluation_dispatch(hint_id=evaluation_id, task_id=self.request.id or "")
