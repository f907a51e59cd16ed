"""The search step: ask the engine for enough new evaluations to fill the search's parallelism."""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from searches import engine
from searches.models import Evaluation, SearchInstance
from searches.services.steering import enqueue_evaluations

logger = logging.getLogger(__name__)


def search_step(*, search_id: int) -> None:
    """Tell the engine every finished evaluation and ask it for enough new ones to fill
    ``parallelism``. Cheap when there is nothing to do.

    The engine's work (fine-tuning the surrogate, scoring every candidate) runs outside any
    transaction, so pause, cancel and finishing evaluations never wait for it; the result is
    stored only if no other step stored one meanwhile (``engine_version``), else the step
    starts over from the newer state.
    """
    for _ in range(5):
        if _search_step_once(search_id):
            return
    logger.warning("search %s: five concurrent search steps in a row; leaving the work to the next one", search_id)


def _search_step_once(search_id: int) -> bool:
    """One optimistic attempt; returns False when another step stored a newer engine state first."""
    search = SearchInstance.objects.select_related("space").filter(id=search_id).first()
    if search is None or search.state not in SearchInstance.ACTIVE_STATES:
        return True
    version = search.engine_version
    finals = list(search.evaluations.filter(
        told=False, retried=False, state__in=(Evaluation.State.DONE, Evaluation.State.FAILED),
    ).order_by("seq", "id"))
    in_flight = search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).count()
    wanted = search.parallelism - in_flight if search.state != SearchInstance.State.PAUSED else 0
    if not finals and wanted <= 0 and search.engine_state is not None:
        return True
    try:
        driver = engine.engine_for(search)
        for evaluation in finals:
            engine.tell(
                driver, index=evaluation.encoding_index, fidelity=evaluation.fidelity,
                value=evaluation.value if evaluation.state == Evaluation.State.DONE else None,
                error=evaluation.error or None if evaluation.state == Evaluation.State.FAILED else None,
                cost_units=evaluation.cost, hi_fi_cost=search.hi_fi_cost, duration_s=evaluation.duration_s,
            )
        proposals = engine.ask(driver, wanted) if wanted > 0 else []
    except Exception as exc:  # the engine failed: keep every finished evaluation, stop with the reason
        logger.exception("search step of search %s failed", search_id)
        SearchInstance.objects.filter(id=search_id, state__in=SearchInstance.ACTIVE_STATES).update(
            state=SearchInstance.State.FAILED, failure_reason=f"search step failed: {type(exc).__name__}: {exc}",
            ended_at=timezone.now(), updated_at=timezone.now())
        return True

    with transaction.atomic():
        search = SearchInstance.objects.select_for_update().get(id=search_id)
        if search.engine_version != version:
            return False
        if search.state not in SearchInstance.ACTIVE_STATES:
            return True  # cancelled meanwhile: nothing new may start
        if search.state == SearchInstance.State.PAUSED and proposals:
            for proposal in proposals:  # paused meanwhile: the engine must not wait for these
                engine.withdraw(driver, proposal)
            proposals = []
        if finals:
            Evaluation.objects.filter(id__in=[evaluation.id for evaluation in finals]).update(told=True)
        created = []
        for proposal in proposals:
            try:
                with transaction.atomic():
                    created.append(Evaluation.objects.create(
                        search=search, encoding_index=proposal.index, fidelity=proposal.fidelity,
                        predicted_mean=proposal.predicted_mean, predicted_std=proposal.predicted_std,
                    ))
            except IntegrityError:  # the engine proposed something already run: skip it, never run it twice
                logger.warning("search %s: proposal %s/%s exists already", search_id, proposal.index,
                               proposal.fidelity)
                engine.withdraw(driver, proposal)
        search.engine_state = engine.state_of(driver)
        search.engine_version = version + 1
        if search.state == SearchInstance.State.QUEUED:
            search.state = SearchInstance.State.RUNNING
            search.started_at = timezone.now()
        if not created and in_flight == 0 and search.state == SearchInstance.State.RUNNING and not \
                search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).exists():
            search.state = SearchInstance.State.FINISHED
            search.ended_at = timezone.now()
        search.save(update_fields=["engine_state", "engine_version", "state", "started_at", "ended_at",
                                   "updated_at"])
        _save_surrogate(search, driver)
        enqueue_evaluations([evaluation.id for evaluation in created])
    return True


def _save_surrogate(search: SearchInstance, driver: Any) -> None:
    """Keep the engine's fine-tuned surrogate so predictions need no refit (safetensors, no pickle)."""
    blob = engine.surrogate_checkpoint(driver)
    if blob is None:
        return
    if search.surrogate_checkpoint:
        search.surrogate_checkpoint.delete(save=False)
    search.surrogate_checkpoint.save("surrogate.safetensors", ContentFile(blob), save=False)
    SearchInstance.objects.filter(id=search.id).update(surrogate_checkpoint=search.surrogate_checkpoint.name)


