"""Running one evaluation (queue gpu): claim it, run the evaluator, record its result."""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from nasweb.recovery import keep_beating
from searches import evaluators, scheduling
from searches.evaluator_kinds import EvaluationFailed, kind_of
from searches.gpus import NoGpuAvailable, gpu_slots
from searches.models import Evaluation, SearchInstance
from searches.services.steering import CANCELLED, enqueue_step, enqueue_tokens, next_attempt
from searches.storage import EvaluationRowStorage
from spaces.services import load_encodings
from usercode import SandboxError, SandboxLimits

logger = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
LOG_TAIL_CHARS = 4000
WORKER_LOST = "the worker running this evaluation stopped (killed or lost)"


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(evaluation_id: int, task_id: str, *, fair: bool) -> Evaluation | None:
    """Take a queued evaluation: the next one in fair order (``fair``) or exactly ``evaluation_id``; or,
    for a redelivered message of an evaluation whose worker died, take over from that worker."""
    now = timezone.now()
    fields = {"state": Evaluation.State.RUNNING, "started_at": now, "heartbeat_at": now, "worker": _worker_name()}
    if task_id:
        fields["task_id"] = task_id
    silent_since = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    stale = Evaluation.objects.filter(id=evaluation_id, state=Evaluation.State.RUNNING,
                                      heartbeat_at__lt=silent_since).first() if evaluation_id else None
    if stale is not None:
        return _replace_lost_attempt(stale, task_id)
    claimed = scheduling.claim_next(**fields) if fair else \
        (evaluation_id if scheduling.claim_own(evaluation_id, **fields) else None)
    if claimed is None:
        return None  # nothing waits, or a duplicate message of a finished or running evaluation
    return Evaluation.objects.select_related("search__space").get(id=claimed)


def _replace_lost_attempt(lost: Evaluation, task_id: str) -> Evaluation | None:
    with transaction.atomic():
        retry_allowed = lost.attempt < settings.NASWEB_MAX_ATTEMPTS
        updated = Evaluation.objects.filter(id=lost.id, state=Evaluation.State.RUNNING,
                                            heartbeat_at=lost.heartbeat_at).update(
            state=Evaluation.State.FAILED, error=WORKER_LOST, finished_at=timezone.now(), retried=retry_allowed)
        if not updated:
            return None
        if not retry_allowed:
            EvaluationRowStorage(lost.search).place_in_order(lost.id)
            enqueue_step(lost.search_id)
            return None
        retry = next_attempt(lost)
        now = timezone.now()
        Evaluation.objects.filter(id=retry.id).update(state=Evaluation.State.RUNNING, started_at=now,
                                                      heartbeat_at=now, worker=_worker_name(), task_id=task_id)
    logger.warning("evaluation %s was lost with its worker; running attempt %s", lost.id, retry.attempt)
    return Evaluation.objects.select_related("search__space").get(id=retry.id)


def _runs_folder(search: SearchInstance) -> Path:
    folder = Path(settings.MEDIA_ROOT) / "searches" / str(search.owner_id) / str(search.uid)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def evaluation_dispatch(*, hint_id: int = 0, task_id: str = "") -> None:
    """What a ``gpu`` message does: run the next evaluation in fair order (:mod:`searches.scheduling`),
    or, first come first served (``NASWEB_FAIR_SHARE=false``), the hinted one. A hinted evaluation whose
    worker died is taken over in either case."""
    evaluation = _claim(hint_id, task_id, fair=scheduling.fair_share_enabled())
    if evaluation is not None:
        _run(evaluation)


def evaluation_run(*, evaluation_id: int, task_id: str = "") -> None:
    """Run exactly this evaluation (drivers that work through a search inline: the demo, tests)."""
    evaluation = _claim(evaluation_id, task_id, fair=False)
    if evaluation is not None:
        _run(evaluation)


def _run(evaluation: Evaluation) -> None:
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
        # beats while it waits for a GPU and reads the space, before the sandbox's own ticks
        with keep_beating(lambda: Evaluation.objects.filter(id=evaluation.id, state=Evaluation.State.RUNNING)
                          .update(heartbeat_at=timezone.now())), \
                gpu_slots(kind_of(search).gpus_needed(search)) as gpu:
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


def _evaluate(evaluation: Evaluation, search: SearchInstance, gpu: str, log_path: Path) -> float | dict[str, float]:
    def tick(log_tail: str) -> bool:
        return _heartbeat(evaluation.id, search.id, log_tail)

    scratch = Path(tempfile.mkdtemp(prefix="evaluate-", dir=_scratch_root()))
    try:
        return kind_of(search).run(evaluators.EvaluationRequest(
            search=search, encoding=load_encodings(search.space)[evaluation.encoding_index],
            encoding_index=evaluation.encoding_index, fidelity=evaluation.fidelity, log_path=log_path,
            scratch=scratch, runs_folder=_runs_folder(search), gpu=gpu, on_tick=tick, tick_s=HEARTBEAT_S,
            log_tail_chars=LOG_TAIL_CHARS,
            limits=SandboxLimits(memory_mb=settings.NASWEB_SANDBOX_MEMORY_MB, cpu_s=settings.NASWEB_SANDBOX_CPU_S,
                                 wall_s=settings.NASWEB_SANDBOX_WALL_S, processes=settings.NASWEB_SANDBOX_PROCESSES),
        ))
    except EvaluationFailed as exc:
        raise _EvaluationFailed(str(exc)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_root() -> Path:
    root = settings.VAR_DIR / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def split_objectives(search: SearchInstance, result: Any) -> tuple[float | None, dict[str, float] | None,
                                                                   str | None]:
    """An evaluator's result as ``(value, objectives, error)``: a number is the value; a dict (several
    objectives) gives the primary objective's number as the value (in the search's direction, which is the
    primary's) and is kept whole as the objectives. A dict the search cannot use is a failed evaluation."""
    if not isinstance(result, dict):
        return result, None, None
    if not search.objectives:
        return None, None, (f"the evaluator returned several values ({', '.join(sorted(map(str, result)))}); "
                            "start the search with objectives to use them, or return one number")
    primary = str(search.objectives[0][0])
    if primary not in result:
        return None, None, (f"the evaluator's result has no primary objective {primary!r}; it has "
                            f"{', '.join(sorted(map(str, result)))}")
    values: dict[str, float] = {}
    for key, number in result.items():
        try:
            values[str(key)] = float(number)
        except (TypeError, ValueError):
            return None, None, f"the evaluator returned {key}={number!r}, not a number"
        if not math.isfinite(values[str(key)]):
            return None, None, f"the evaluator returned {key}={number!r}; every value must be finite"
    return values[primary], values, None


def _finish(evaluation: Evaluation, *, value: float | dict[str, float] | None, error: str | None,
            duration_s: float | None = None, log_path: Path | None = None) -> None:
    search = evaluation.search
    objectives = None
    if error is None:
        value, objectives, error = split_objectives(search, value)
    units = (search.lo_fi_cost if evaluation.fidelity == Evaluation.Fidelity.LO else search.hi_fi_cost) / \
        search.hi_fi_cost
    log_tail = ""
    if log_path is not None and log_path.exists():
        log_tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    with transaction.atomic():
        recorded = EvaluationRowStorage(search).finish({
            "id": evaluation.id, "index": evaluation.encoding_index, "fidelity": evaluation.fidelity,
            "value": value if error is None else None, "error": error,
            # a failed evaluation spends its cost too: it used the machine
            "budget_units": units if error != CANCELLED else 0.0, "duration_s": duration_s, "log_tail": log_tail,
            "objectives": objectives if error is None else None,
        })
        if not recorded:
            return  # cancelled or taken over meanwhile: this result must not count
        enqueue_step(search.id)
        if scheduling.limit_per_user() and Evaluation.objects.filter(
                search__owner_id=search.owner_id, state=Evaluation.State.QUEUED).exists():
            # a message that found all of this owner's work held by the limit was dropped: send one for
            # the evaluation this finish lets start
            enqueue_tokens(1)
    logger.info("evaluation %s of search %s: encoding %s %s -> %s", evaluation.id, search.id,
                evaluation.encoding_index, evaluation.fidelity, value if error is None else f"failed: {error[:200]}")


def evaluation_log(evaluation: Evaluation) -> str:
    """The evaluation's whole log (falls back to the stored tail)."""
    if evaluation.log_file and Path(evaluation.log_file).exists():
        return Path(evaluation.log_file).read_text(errors="replace")
    return evaluation.log_tail


