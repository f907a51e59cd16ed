"""Business actions on searches: create, pause/resume/cancel, retry, and the two task bodies
that drive a search: ``search_step`` (tell results, ask for the next evaluations) and
``evaluation_run`` (claim one evaluation, run it, commit its result).

Idempotency: evaluations are claimed with conditional updates; a redelivered message for a
finished evaluation does nothing; a killed worker's evaluation is detected by its stale
heartbeat and retried as a new attempt (up to ``NASWEB_MAX_ATTEMPTS``); only a final attempt
is told to the engine, once (``told``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from nasweb.api_errors import ConflictError, DomainError, NotFoundError
from searches import engine, evaluators
from searches.gpus import NoGpuAvailable, gpu_slots
from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from spaces.services import load_encodings, validate_module_source
from usercode import SandboxError, SandboxLimits, run_user_code, tail

logger = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
LOG_TAIL_CHARS = 4000
WORKER_LOST = "the worker running this evaluation stopped (killed or lost)"
CANCELLED = "cancelled with its search"


class SearchValidationError(DomainError):
    """Bad input for a search; ``field`` names the form/API field at fault."""


# --------------------------------------------------------------------------------------------------
# Creating and steering searches
# --------------------------------------------------------------------------------------------------


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
        _enqueue_step(search.id)
    return search


def _enqueue_step(search_id: int) -> None:
    from searches.tasks import search_step

    transaction.on_commit(lambda: search_step.delay(search_id))


def _enqueue_evaluations(evaluation_ids: list[int]) -> None:
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
        _enqueue_step(search.id)
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
        retry = _next_attempt(evaluation)
        _enqueue_evaluations([retry.id])
    return retry


def _next_attempt(evaluation: Evaluation) -> Evaluation:
    attempt = Evaluation.objects.filter(
        search_id=evaluation.search_id, encoding_index=evaluation.encoding_index, fidelity=evaluation.fidelity,
    ).order_by("-attempt").values_list("attempt", flat=True).first() or evaluation.attempt
    return Evaluation.objects.create(
        search_id=evaluation.search_id, encoding_index=evaluation.encoding_index, fidelity=evaluation.fidelity,
        attempt=attempt + 1, predicted_mean=evaluation.predicted_mean, predicted_std=evaluation.predicted_std,
    )


# --------------------------------------------------------------------------------------------------
# Search step: tell finished results, ask for the next batch
# --------------------------------------------------------------------------------------------------


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
        _enqueue_evaluations([evaluation.id for evaluation in created])
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


# --------------------------------------------------------------------------------------------------
# Running one evaluation (queue gpu)
# --------------------------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(evaluation_id: int, task_id: str) -> Evaluation | None:
    """Take a queued evaluation; or, for a redelivered message, take over from a dead worker."""
    now = timezone.now()
    fields = {"state": Evaluation.State.RUNNING, "started_at": now, "heartbeat_at": now, "worker": _worker_name()}
    if task_id:
        fields["task_id"] = task_id
    if Evaluation.objects.filter(id=evaluation_id, state=Evaluation.State.QUEUED).update(**fields):
        return Evaluation.objects.select_related("search__space").get(id=evaluation_id)
    silent_since = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    stale = Evaluation.objects.filter(id=evaluation_id, state=Evaluation.State.RUNNING,
                                      heartbeat_at__lt=silent_since).first()
    if stale is None:
        return None  # finished, failed, or alive in another worker: a duplicate message, nothing to do
    return _replace_lost_attempt(stale, task_id)


def _replace_lost_attempt(lost: Evaluation, task_id: str) -> Evaluation | None:
    with transaction.atomic():
        retry_allowed = lost.attempt < settings.NASWEB_MAX_ATTEMPTS
        updated = Evaluation.objects.filter(id=lost.id, state=Evaluation.State.RUNNING,
                                            heartbeat_at=lost.heartbeat_at).update(
            state=Evaluation.State.FAILED, error=WORKER_LOST, finished_at=timezone.now(), retried=retry_allowed)
        if not updated:
            return None
        if not retry_allowed:
            _record_finish_order(Evaluation.objects.get(id=lost.id))
            _enqueue_step(lost.search_id)
            return None
        retry = _next_attempt(lost)
        now = timezone.now()
        Evaluation.objects.filter(id=retry.id).update(state=Evaluation.State.RUNNING, started_at=now,
                                                      heartbeat_at=now, worker=_worker_name(), task_id=task_id)
    logger.warning("evaluation %s was lost with its worker; running attempt %s", lost.id, retry.attempt)
    return Evaluation.objects.select_related("search__space").get(id=retry.id)


def _runs_folder(search: SearchInstance) -> Path:
    folder = Path(settings.MEDIA_ROOT) / "searches" / str(search.owner_id) / str(search.uid)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def evaluation_run(*, evaluation_id: int, task_id: str = "") -> None:
    evaluation = _claim(evaluation_id, task_id)
    if evaluation is None:
        return
    search = evaluation.search
    if search.state in (SearchInstance.State.CANCELLED, SearchInstance.State.FAILED):
        _finish(evaluation, value=None, error=CANCELLED)
        return
    log_path = _runs_folder(search) / "logs" / f"{evaluation.encoding_index}-{evaluation.fidelity}-" \
        f"{evaluation.attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    Evaluation.objects.filter(id=evaluation.id).update(log_file=str(log_path))
    started = time.monotonic()
    try:
        with gpu_slots(evaluators.gpus_needed(search)) as gpu:
            Evaluation.objects.filter(id=evaluation.id).update(gpu=gpu)
            value = _evaluate(evaluation, search, gpu, log_path)
        error = None
    except (SandboxError, evaluators.EvaluatorValidationError, NoGpuAvailable, _EvaluationFailed) as exc:
        value, error = None, _describe(exc)
        if isinstance(exc, SandboxError) and exc.kind == "cancelled":
            return  # the search was cancelled: search_cancel already closed this evaluation
    _finish(evaluation, value=value, error=error, duration_s=time.monotonic() - started, log_path=log_path)


class _EvaluationFailed(Exception):
    pass


def _describe(exc: Exception) -> str:
    if isinstance(exc, SandboxError):
        return f"{exc.message}\n\n{exc.details}".strip()
    if isinstance(exc, evaluators.EvaluatorValidationError):
        return exc.reason
    return str(exc)


def _heartbeat(evaluation_id: int, search_id: int, log_tail: str) -> bool:
    """Beat, publish the log tail, and say whether to go on (False once the search is cancelled)."""
    Evaluation.objects.filter(id=evaluation_id, state=Evaluation.State.RUNNING).update(
        heartbeat_at=timezone.now(), log_tail=log_tail[-LOG_TAIL_CHARS:])
    return not SearchInstance.objects.filter(
        id=search_id, state__in=(SearchInstance.State.CANCELLED, SearchInstance.State.FAILED)).exists()


def _evaluate(evaluation: Evaluation, search: SearchInstance, gpu: str, log_path: Path) -> float:
    kind = search.evaluator_kind

    def tick(log_tail: str) -> bool:
        return _heartbeat(evaluation.id, search.id, log_tail)

    if kind == SearchInstance.EvaluatorKind.TABULAR:
        return _evaluate_tabular(evaluation, search, log_path, tick)
    encoding = load_encodings(search.space)[evaluation.encoding_index]
    limits = SandboxLimits(memory_mb=settings.NASWEB_SANDBOX_MEMORY_MB, cpu_s=settings.NASWEB_SANDBOX_CPU_S,
                           wall_s=settings.NASWEB_SANDBOX_WALL_S)
    scratch = Path(tempfile.mkdtemp(prefix="evaluate-", dir=_scratch_root()))
    try:
        if kind == SearchInstance.EvaluatorKind.MODULE:
            return float(run_user_code(
                "evaluate_module", {"encoding": encoding, "fidelity": evaluation.fidelity}, scratch=scratch,
                limits=limits, modules={"evaluator_module.py": search.evaluator_source}, log_path=log_path, gpu=gpu,
                on_tick=tick, tick_s=HEARTBEAT_S,
            ))
        config = evaluators.image_classification_payload(search, evaluation.fidelity, gpu, log_path)
        config.pop("log_path")
        run_dir = _runs_folder(search) / "runs" / f"{evaluation.encoding_index}-{evaluation.fidelity}"
        config.update(work_dir=str(run_dir.parent), run_dir=str(run_dir))
        train_log = run_dir / "train.log"

        def training_tick(child_log: str) -> bool:
            return tick(tail(train_log, LOG_TAIL_CHARS) or child_log)

        try:
            return float(run_user_code(
                "evaluate_image_classification", {"encoding": encoding, "config": config}, scratch=scratch,
                limits=limits, modules={"user_module.py": search.space.module_source}, log_path=log_path, gpu=gpu,
                on_tick=training_tick, tick_s=HEARTBEAT_S,
            ))
        finally:
            if train_log.exists():
                with log_path.open("a") as log:
                    log.write(f"\n--- training log ({train_log}) ---\n{tail(train_log, 200_000)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_root() -> Path:
    root = settings.VAR_DIR / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _evaluate_tabular(evaluation: Evaluation, search: SearchInstance, log_path: Path, tick: Any) -> float:
    table = evaluators.load_table(search)
    delay = float(search.evaluator_config.get("delay_s", 0))
    with log_path.open("a") as log:
        log.write(f"tabular lookup of encoding {evaluation.encoding_index} ({evaluation.fidelity} fidelity)\n")
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        time.sleep(min(HEARTBEAT_S, max(0.0, deadline - time.monotonic())))
        if not tick(log_path.read_text()):
            raise SandboxError("cancelled", "stopped: the search was cancelled")
    value = table.get(evaluation.fidelity, {}).get(evaluation.encoding_index)
    if value is None:
        raise _EvaluationFailed(
            f"the table has no {evaluation.fidelity} value for encoding {evaluation.encoding_index}")
    with log_path.open("a") as log:
        log.write(f"value {value}\n")
    return value


def _record_finish_order(evaluation: Evaluation) -> None:
    """Give a finished evaluation its place in the search's order and the curve's running figures.

    Runs in the caller's transaction with the search row locked, so ``seq`` is gap-free.
    """
    search = SearchInstance.objects.select_for_update().get(id=evaluation.search_id)
    search.finished_count += 1
    if evaluation.state == Evaluation.State.DONE:
        search.spent += evaluation.cost
        if evaluation.fidelity == Evaluation.Fidelity.HI and evaluation.value is not None and (
                search.best_value is None or evaluation.value > search.best_value):
            search.best_value = evaluation.value
            search.best_index = evaluation.encoding_index
    Evaluation.objects.filter(id=evaluation.id).update(
        seq=search.finished_count, spent_after=search.spent, best_after=search.best_value)
    search.save(update_fields=["finished_count", "spent", "best_value", "best_index", "updated_at"])


def _finish(evaluation: Evaluation, *, value: float | None, error: str | None, duration_s: float | None = None,
            log_path: Path | None = None) -> None:
    search = evaluation.search
    cost = (search.lo_fi_cost if evaluation.fidelity == Evaluation.Fidelity.LO else search.hi_fi_cost) / \
        search.hi_fi_cost
    log_tail = ""
    if log_path is not None and log_path.exists():
        log_tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    with transaction.atomic():
        updated = Evaluation.objects.filter(id=evaluation.id, state=Evaluation.State.RUNNING).update(
            state=Evaluation.State.DONE if error is None else Evaluation.State.FAILED,
            value=value, error=error or "", cost=cost if error is None else 0.0, finished_at=timezone.now(),
            duration_s=duration_s, log_tail=log_tail, heartbeat_at=timezone.now(),
        )
        if not updated:
            return  # cancelled or taken over meanwhile: this result must not count
        _record_finish_order(Evaluation.objects.get(id=evaluation.id))
        _enqueue_step(search.id)
    logger.info("evaluation %s of search %s: encoding %s %s -> %s", evaluation.id, search.id,
                evaluation.encoding_index, evaluation.fidelity, value if error is None else f"failed: {error[:200]}")


def evaluation_log(evaluation: Evaluation) -> str:
    """The evaluation's whole log (falls back to the stored tail)."""
    if evaluation.log_file and Path(evaluation.log_file).exists():
        return Path(evaluation.log_file).read_text(errors="replace")
    return evaluation.log_tail


