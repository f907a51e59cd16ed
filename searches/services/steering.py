"""Creating searches and steering them: pause, resume, cancel, delete, retry an evaluation."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from nasweb.errors import ConflictError, NotFoundError
from searches import evaluator_kinds
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec, SearchValidationError
from searches.storage import N_INITIAL
from spaces.models import SearchSpace
from spaces.selectors import space_transfer_picks

logger = logging.getLogger(__name__)

CANCELLED = "cancelled with its search"


def search_create(*, owner: Any, space: SearchSpace, spec: SearchSpec) -> SearchInstance:
    """Validate everything, then store the search and enqueue its first step."""
    if space.owner_id != owner.id:
        raise NotFoundError("space", "no such search space")
    if space.state != SearchSpace.State.READY:
        raise SearchValidationError("space", f"the search space is {space.state}, not ready; wait until it is")
    spec = spec.checked()
    stored = evaluator_kinds.get(spec.evaluator_kind).validate(spec, space)
    candidates = _initial_candidates(space, spec.initial_candidates)
    with transaction.atomic():
        search = SearchInstance(
            uid=uuid.uuid4(), owner=owner, space=space, name=spec.name, evaluator_kind=spec.evaluator_kind,
            evaluator_config=stored.config, evaluator_source=stored.source, evaluator_sha256=stored.source_sha256,
            hi_fi_cost=spec.hi_fi_cost, lo_fi_cost=spec.lo_fi_cost, budget=spec.budget,
            parallelism=spec.parallelism, seed=spec.seed, acquisition=spec.acquisition, surrogate=spec.surrogate,
            direction=spec.direction, objectives=spec.objectives, constraints=spec.constraints,
            reference_point=spec.reference_point, initial_candidates=candidates,
        )
        if stored.table is not None:
            search.evaluator_table.save("table.csv", ContentFile(stored.table), save=False)
        search.save()
        enqueue_step(search.id)
    return search


def _initial_candidates(space: SearchSpace, given: list[int] | None) -> list[int]:
    """What a new search evaluates first: the indices given, checked against the space, or else the first
    ``N_INITIAL`` of the best results of the searches the space was pretrained on (transfer)."""
    failures: dict[int, str] = {}
    if space.profile_failures:  # the engine never proposes a candidate whose profiling failed
        from spaces.services import load_profile

        failures = load_profile(space)[1]
    if given is None:
        return [index for index in space_transfer_picks(space, None) if index not in failures][:N_INITIAL]
    for k, index in enumerate(given):
        if index >= space.n_encodings:
            raise SearchValidationError("initial_candidates", f"entry {k + 1} ({index}) is not an encoding index of"
                                        f" the space (0..{space.n_encodings - 1})")
        if index in failures:
            raise SearchValidationError("initial_candidates", f"entry {k + 1} ({index}) could not be profiled"
                                        f" ({failures[index]}), so it is never evaluated; leave it out")
    return given


def enqueue_step(search_id: int) -> None:
    """Send the search a step, unless one is already waiting for a worker: that one reads every finished
    evaluation when it starts (and clears ``step_pending`` first). So a search with many evaluations in
    flight holds one place in the ``search`` queue, not one per finish, and the queue goes round the
    searches. A lost message is sent again by the watchdog (``searches.recovery``)."""
    from searches.tasks import search_step

    if SearchInstance.objects.filter(id=search_id, step_pending=False).update(step_pending=True):
        transaction.on_commit(lambda: search_step.delay(search_id))


def enqueue_evaluations(evaluation_ids: list[int]) -> None:
    """One ``gpu`` message per new evaluation. With fair share a message runs whichever evaluation is next
    in fair order (:mod:`searches.scheduling`), so the messages only count the work waiting."""
    from searches.tasks import run_evaluation

    def send() -> None:
        for evaluation_id in evaluation_ids:
            result = run_evaluation.delay(evaluation_id)
            Evaluation.objects.filter(id=evaluation_id, task_id="").update(task_id=result.id)

    transaction.on_commit(send)


def enqueue_tokens(count: int) -> None:
    """Send ``count`` messages that each run the next evaluation in fair order (no particular one)."""
    from searches.tasks import run_evaluation

    transaction.on_commit(lambda: [run_evaluation.delay(0) for _ in range(count)])


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
        open_evaluations.update(state=Evaluation.State.FAILED, error=CANCELLED, finished_at=timezone.now())
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
    """Run a failed evaluation again as a new attempt, which replaces it in the engine's history."""
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




def search_extend_budget(*, search: SearchInstance, budget: float) -> SearchInstance:
    """Raise the budget to ``budget`` (hi-fi evaluation units); a finished search goes back to running."""
    from searches.spec import BUDGET_MAX, _number

    budget = _number(budget, "budget", low=0, high=BUDGET_MAX, low_inclusive=False)
    if budget <= search.budget:
        raise SearchValidationError("budget", f"the new budget must be more than the current {search.budget:g}")
    extendable = (*SearchInstance.ACTIVE_STATES, SearchInstance.State.FINISHED)
    with transaction.atomic():
        locked = SearchInstance.objects.select_for_update().get(id=search.id)
        if locked.state not in extendable:
            raise ConflictError("state", f"cannot extend the budget of a search that is {locked.state}")
        fields: dict[str, Any] = {"budget": budget}
        if locked.state == SearchInstance.State.FINISHED:
            fields.update(state=SearchInstance.State.RUNNING, ended_at=None)
        SearchInstance.objects.filter(id=search.id).update(updated_at=timezone.now(), **fields)
        if locked.state != SearchInstance.State.PAUSED:
            enqueue_step(search.id)
    search.refresh_from_db()
    return search


def search_retry_failed(*, search: SearchInstance) -> list[Evaluation]:
    """Run every failed evaluation of the search again as a new attempt; a finished search goes back
    to running (the retries count against its budget like any evaluation)."""
    with transaction.atomic():
        locked = SearchInstance.objects.select_for_update().get(id=search.id)
        allowed = (SearchInstance.State.RUNNING, SearchInstance.State.PAUSED, SearchInstance.State.FINISHED)
        if locked.state not in allowed:
            raise ConflictError("state", f"cannot retry the evaluations of a search that is {locked.state}")
        failed = list(locked.evaluations.filter(state=Evaluation.State.FAILED, retried=False).exclude(error=CANCELLED))
        if not failed:
            raise ConflictError("state", "the search has no failed evaluations to retry")
        Evaluation.objects.filter(id__in=[evaluation.id for evaluation in failed]).update(retried=True)
        retries = [next_attempt(evaluation) for evaluation in failed]
        if locked.state == SearchInstance.State.FINISHED:
            SearchInstance.objects.filter(id=search.id).update(
                state=SearchInstance.State.RUNNING, ended_at=None, updated_at=timezone.now())
        enqueue_evaluations([retry.id for retry in retries])
    search.refresh_from_db()
    return retries


TAGS_MAX = 20
TAG_MAX_CHARS = 40
NOTES_MAX_CHARS = 20_000


def clean_tags(tags: Any, *, field: str = "tags") -> list[str]:
    """Tags as a list of distinct, stripped, non-empty labels (a comma-separated text is split)."""
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise SearchValidationError(field, "give the tags as a list of texts or one comma-separated text")
    cleaned: list[str] = []
    for tag in (tag.strip() for tag in tags):
        if len(tag) > TAG_MAX_CHARS:
            raise SearchValidationError(field, f"a tag has at most {TAG_MAX_CHARS} characters: {tag[:50]!r}")
        if tag and tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > TAGS_MAX:
        raise SearchValidationError(field, f"at most {TAGS_MAX} tags")
    return cleaned


def search_annotate(*, search: SearchInstance, name: str | None = None, notes: str | None = None,
                    tags: Any = None) -> SearchInstance:
    """Rename the search, or change its notes or tags (only what is given); allowed in every state."""
    from searches.spec import NAME_MAX_CHARS

    fields: dict[str, Any] = {}
    if name is not None:
        name = name.strip()
        if not name or len(name) > NAME_MAX_CHARS:
            raise SearchValidationError("name", f"give the search a name of at most {NAME_MAX_CHARS} characters")
        fields["name"] = name
    if notes is not None:
        if len(notes) > NOTES_MAX_CHARS:
            raise SearchValidationError("notes", f"notes have at most {NOTES_MAX_CHARS} characters")
        fields["notes"] = notes
    if tags is not None:
        fields["tags"] = clean_tags(tags)
    if fields:
        SearchInstance.objects.filter(id=search.id).update(updated_at=timezone.now(), **fields)
        search.refresh_from_db()
    return search


def search_clone_spec(*, search: SearchInstance, **changes: Any) -> SearchSpec:
    """The settings of ``search`` as a new :class:`SearchSpec` (its module and table included), with ``changes``."""
    import dataclasses

    table = None
    if search.evaluator_table:
        with search.evaluator_table.open("rb") as handle:
            table = handle.read()
    spec = SearchSpec(
        name=f"{search.name} (copy)"[:120], evaluator_kind=search.evaluator_kind, budget=search.budget,
        hi_fi_cost=search.hi_fi_cost, lo_fi_cost=search.lo_fi_cost, parallelism=search.parallelism, seed=search.seed,
        acquisition=search.acquisition, surrogate=search.surrogate, direction=search.direction,
        evaluator_config=dict(search.evaluator_config),
        evaluator_source=search.evaluator_source, evaluator_table=table,
        objectives=list(search.objectives or []), constraints=list(search.constraints or []),
        reference_point=dict(search.reference_point or {}), initial_candidates=list(search.initial_candidates) or None,
    )
    return dataclasses.replace(spec, **changes)


def search_clone(*, search: SearchInstance, owner: Any, **changes: Any) -> SearchInstance:
    """Start a new search with the settings of ``search`` (same space), with ``changes`` applied."""
    return search_create(owner=owner, space=search.space, spec=search_clone_spec(search=search, **changes))
