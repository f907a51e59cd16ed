"""Creating searches and steering them: pause, resume, cancel, delete, retry an evaluation."""

from __future__ import annotations

import hashlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from nasweb.errors import ConflictError, DomainError, NotFoundError
from searches import evaluators
from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from spaces.services import validate_module_source

logger = logging.getLogger(__name__)

CANCELLED = "cancelled with its search"


class SearchValidationError(DomainError):
    """Bad input for a search; ``field`` names the form/API field at fault."""


def _number(value: Any, field: str, *, low: float, high: float, integer: bool = False,
            low_inclusive: bool = True) -> Any:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise SearchValidationError(field, "must be an integer" if integer else "must be a number") from None
    if integer and float(value) != number:
        raise SearchValidationError(field, "must be an integer")
    if not (low <= number if low_inclusive else low < number) or number > high:
        bound = f"{'at least' if low_inclusive else 'more than'} {low:g}"
        raise SearchValidationError(field, f"must be {bound} and at most {high:g}")
    return number


def search_create(
    *, owner: Any, space: SearchSpace, name: str, evaluator_kind: str, budget: Any,
    evaluator_config: dict | None = None, evaluator_source: str = "", evaluator_table: UploadedFile | None = None,
    hi_fi_cost: Any = 1.0, lo_fi_cost: Any = None, parallelism: Any = 1, seed: Any = 0, acquisition: str = "ei",
) -> SearchInstance:
    """Validate everything, then store the search and enqueue its first step."""
    if space.owner_id != owner.id:
        raise NotFoundError("space", "no such search space")
    if space.state != SearchSpace.State.READY:
        raise SearchValidationError("space", f"the search space is {space.state}, not ready; wait until it is")
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise SearchValidationError("name", "give the search a name of at most 120 characters")
    budget = _number(budget, "budget", low=0, high=1_000_000, low_inclusive=False)
    hi_fi_cost = _number(hi_fi_cost, "hi_fi_cost", low=0, high=1e9, low_inclusive=False)
    if lo_fi_cost in (None, ""):
        lo_fi_cost = None
    else:
        lo_fi_cost = _number(lo_fi_cost, "lo_fi_cost", low=0, high=1e9, low_inclusive=False)
        if lo_fi_cost >= hi_fi_cost:
            raise SearchValidationError("lo_fi_cost", "the low fidelity must cost less than the high fidelity")
    parallelism = _number(parallelism, "parallelism", low=1, high=64, integer=True)
    seed = _number(seed, "seed", low=0, high=2**31 - 1, integer=True)
    if acquisition not in SearchInstance.Acquisition.values:
        raise SearchValidationError("acquisition", f"choose one of {', '.join(SearchInstance.Acquisition.values)}")
    if evaluator_kind not in SearchInstance.EvaluatorKind.values:
        raise SearchValidationError("evaluator_kind",
                                    f"choose one of {', '.join(SearchInstance.EvaluatorKind.values)}")

    config: dict[str, Any] = {}
    table_bytes: bytes | None = None
    source = ""
    if evaluator_kind == SearchInstance.EvaluatorKind.IMAGE_CLASSIFICATION:
        config = evaluators.validate_image_config(evaluator_config or {}, has_low_fidelity=lo_fi_cost is not None)
    elif evaluator_kind == SearchInstance.EvaluatorKind.MODULE:
        source = validate_module_source(evaluator_source or "", field="evaluator_source", function="evaluate")
    else:
        if evaluator_table is None:
            raise SearchValidationError("evaluator_table", "upload the CSV table (columns index, hi, lo)")
        if evaluator_table.size and evaluator_table.size > settings.NASWEB_MAX_UPLOAD_MB * 2**20:
            raise SearchValidationError("evaluator_table", f"the file is over {settings.NASWEB_MAX_UPLOAD_MB} MB")
        table_bytes = evaluator_table.read()
        evaluators.parse_table(table_bytes, n_encodings=space.n_encodings, needs_low=lo_fi_cost is not None)
        delay = (evaluator_config or {}).get("delay_s", 0)
        config = {"delay_s": _number(delay, "evaluator_config.delay_s", low=0, high=3600)}

    with transaction.atomic():
        search = SearchInstance(
            uid=uuid.uuid4(), owner=owner, space=space, name=name, evaluator_kind=evaluator_kind,
            evaluator_config=config, evaluator_source=source,
            evaluator_sha256=hashlib.sha256(source.encode()).hexdigest() if source else "",
            hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost, budget=budget, parallelism=parallelism, seed=seed,
            acquisition=acquisition,
        )
        if table_bytes is not None:
            search.evaluator_table.save("table.csv", ContentFile(table_bytes), save=False)
        search.save()
        enqueue_step(search.id)
    return search


def enqueue_step(search_id: int) -> None:
    from searches.tasks import search_step

    transaction.on_commit(lambda: search_step.delay(search_id))


def enqueue_evaluations(evaluation_ids: list[int]) -> None:
    from searches.tasks import run_evaluation

    def send() -> None:
        for evaluation_id in evaluation_ids:
            result = run_evaluation.delay(evaluation_id)
            Evaluation.objects.filter(id=evaluation_id, task_id="").update(task_id=result.id)

    transaction.on_commit(send)


def _transition(search: SearchInstance, allowed: tuple[str, ...], target: str, verb: str, **fields: Any) -> None:
    updated = SearchInstance.objects.filter(id=search.id, state__in=allowed).update(
        state=target, updated_at=timezone.now(), **fields)
    if not updated:
        current = SearchInstance.objects.filter(id=search.id).values_list("state", flat=True).first()
        raise ConflictError("state", f"cannot {verb} a search that is {current}")
    search.refresh_from_db()


def search_pause(*, search: SearchInstance) -> SearchInstance:
    """No new proposals; evaluations in flight finish and are counted."""
    _transition(search, (SearchInstance.State.QUEUED, SearchInstance.State.RUNNING), SearchInstance.State.PAUSED,
                "pause")
    return search


def search_resume(*, search: SearchInstance) -> SearchInstance:
    with transaction.atomic():
        _transition(search, (SearchInstance.State.PAUSED,), SearchInstance.State.RUNNING, "resume")
        enqueue_step(search.id)
    return search


def search_cancel(*, search: SearchInstance) -> SearchInstance:
    """Stop the search now: queued evaluations are dropped, running ones are killed."""
    from nasweb.celery import app as celery_app

    with transaction.atomic():
        _transition(search, SearchInstance.ACTIVE_STATES, SearchInstance.State.CANCELLED, "cancel",
                    ended_at=timezone.now())
        open_evaluations = search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING))
        task_ids = [task_id for task_id in open_evaluations.values_list("task_id", flat=True) if task_id]
        open_evaluations.update(state=Evaluation.State.FAILED, error=CANCELLED, finished_at=timezone.now(),
                                told=True)
    if task_ids:
        # Running evaluations also notice the cancellation on their next heartbeat and kill their child.
        celery_app.control.revoke(task_ids)
    return search


def search_delete(*, search: SearchInstance) -> None:
    if search.state in SearchInstance.ACTIVE_STATES:
        raise ConflictError("state", f"the search is {search.state}; cancel it before deleting it")
    folder = Path(settings.MEDIA_ROOT) / "searches" / str(search.owner_id) / str(search.uid)
    with transaction.atomic():
        search.delete()
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def evaluation_retry(*, evaluation: Evaluation) -> Evaluation:
    """Run a failed evaluation again as a new attempt; its result is then told to the engine."""
    search = evaluation.search
    if evaluation.state != Evaluation.State.FAILED or evaluation.retried:
        raise ConflictError("state", "only a failed evaluation that was not retried yet can be retried")
    if search.state not in (SearchInstance.State.RUNNING, SearchInstance.State.PAUSED):
        raise ConflictError("state", f"the search is {search.state}; resume it to retry evaluations")
    with transaction.atomic():
        updated = Evaluation.objects.filter(id=evaluation.id, state=Evaluation.State.FAILED, retried=False).update(
            retried=True)
        if not updated:
            raise ConflictError("state", "this evaluation was retried already")
        retry = next_attempt(evaluation)
        enqueue_evaluations([retry.id])
    return retry


def next_attempt(evaluation: Evaluation) -> Evaluation:
    attempt = Evaluation.objects.filter(
        search_id=evaluation.search_id, encoding_index=evaluation.encoding_index, fidelity=evaluation.fidelity,
    ).order_by("-attempt").values_list("attempt", flat=True).first() or evaluation.attempt
    return Evaluation.objects.create(
        search_id=evaluation.search_id, encoding_index=evaluation.encoding_index, fidelity=evaluation.fidelity,
        attempt=attempt + 1, predicted_mean=evaluation.predicted_mean, predicted_std=evaluation.predicted_std,
    )


