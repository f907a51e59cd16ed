"""The search step: ask the engine for enough new evaluations to fill the search's parallelism."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from searches import engine
from searches.models import Evaluation, SearchInstance
from searches.services.steering import enqueue_evaluations

logger = logging.getLogger(__name__)


def search_step(*, search_id: int) -> None:
    """Ask the engine for enough new evaluations to fill ``parallelism``; finish the search when it
    proposes nothing and nothing is in flight. Cheap when there is nothing to do.

    The engine reads the finished evaluations from their rows. Its work (fine-tuning the surrogate,
    scoring every candidate) runs outside any transaction, so pause, cancel and finishing evaluations
    never wait for it; its proposals are stored only if no other step asked meanwhile, else the step
    starts over with the newer rows.
    """
    # from now on a finish needs a new step: this one may have read the rows before it
    SearchInstance.objects.filter(id=search_id, step_pending=True).update(step_pending=False)
    for _ in range(5):
        if _search_step_once(search_id):
            return
    logger.warning("search %s: five concurrent search steps in a row; leaving the work to the next one", search_id)


def _search_step_once(search_id: int) -> bool:
    """One optimistic attempt; returns False when another step asked the engine first."""
    search = SearchInstance.objects.select_related("space").filter(id=search_id).first()
    if search is None or search.state not in SearchInstance.ACTIVE_STATES:
        return True
    in_flight = search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).count()
    wanted = search.parallelism - in_flight if search.state != SearchInstance.State.PAUSED else 0
    if wanted <= 0:
        return True
    try:
        driver = engine.engine_for(search)
        proposals = driver.ask(wanted)
    except Exception as exc:  # the engine failed: keep every finished evaluation, stop with the reason
        logger.exception("search step of search %s failed", search_id)
        SearchInstance.objects.filter(id=search_id, state__in=SearchInstance.ACTIVE_STATES).update(
            state=SearchInstance.State.FAILED, failure_reason=f"search step failed: {type(exc).__name__}: {exc}",
            ended_at=timezone.now(), updated_at=timezone.now())
        return True

    storage = driver.storage
    with transaction.atomic():
        search = SearchInstance.objects.select_for_update().get(id=search_id)
        if search.state not in SearchInstance.ACTIVE_STATES:
            return True  # cancelled meanwhile: nothing new may start
        if driver.stop_reason is not None and search.state != SearchInstance.State.PAUSED:
            # e.g. an evaluator that always fails: stop before it burns the budget, and say why
            search.state = SearchInstance.State.FAILED
            search.failure_reason = driver.stop_reason
            search.ended_at = timezone.now()
            search.save(update_fields=["state", "failure_reason", "ended_at", "updated_at"])
            storage.commit()
            return True
        if search.state == SearchInstance.State.PAUSED:
            for proposal in proposals:  # paused meanwhile: nothing new may start
                driver.cancel(proposal.index, proposal.fidelity)
        created = storage.commit()
        if created is None:
            return False
        if search.state == SearchInstance.State.QUEUED:
            search.state = SearchInstance.State.RUNNING
            search.started_at = timezone.now()
        if not created and search.state == SearchInstance.State.RUNNING and not \
                search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).exists():
            search.state = SearchInstance.State.FINISHED
            search.ended_at = timezone.now()
            history = storage.history()
            if history and all(record["value"] is None for record in history):
                # nothing succeeded: a search that found nothing has failed, and says why
                search.state = SearchInstance.State.FAILED
                last = str(history[-1].get("error") or "evaluation failed").strip()
                search.failure_reason = f"no evaluation succeeded; the last error: {last}"
        search.save(update_fields=["state", "started_at", "ended_at", "updated_at", "failure_reason"])
        engine.save_surrogate(search, driver)
        enqueue_evaluations([evaluation.id for evaluation in created])
    return True
