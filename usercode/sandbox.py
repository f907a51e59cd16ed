"""Run user code (``encoding_to_net`` modules, evaluator modules) in a limited child process.

The parent side, :func:`run_user_code`, is called by Celery tasks. It writes the user's
module and a JSON payload into a scratch folder and starts ``python -m usercode.child``
there with

* resource limits: address space (``RLIMIT_AS``, not applied when a GPU is handed out since
  CUDA reserves huge virtual ranges), CPU seconds (``RLIMIT_CPU``), no core files;
* a wall-clock timeout enforced by the parent, which kills the child's whole process group;
* an environment holding no secret: no ``SECRET_KEY``, ``DATABASE_URL`` or broker URL, only
  ``PATH``, ``HOME``/``TMPDIR`` (the scratch folder), ``PYTHONPATH`` (this checkout, so user
  code may import the examples and ``nastune``) and ``CUDA_VISIBLE_DEVICES``;
* its own session, killed with its parent (``PR_SET_PDEATHSIG``).

The child side (:mod:`usercode.child`) imports neither Django nor Celery: it loads the entry
point named on its command line from :mod:`usercode.entrypoints`, runs it on the payload and
writes ``output.json``.

Web processes never call this module: user code runs only in workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usercode.child import OUTPUT, PAYLOAD

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one child process. ``memory_mb=None`` leaves the address space unlimited."""

    memory_mb: int | None = 8192
    cpu_s: int = 3600
    wall_s: float = 1800.0


class SandboxError(Exception):
    """User code failed. ``kind`` is ``error`` (it raised), ``timeout``, ``cpu``, ``memory``,
    ``crashed`` (killed by a signal or exited without an answer) or ``cancelled``."""

    def __init__(self, kind: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


def _child_environment(scratch: Path, gpu: str | None, threads: int) -> dict[str, str]:
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": gpu if gpu not in (None, "cpu") else "",
        # User code reads local datasets only; never let a library reach a hub.
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(scratch / ".hf"),
    }
    for name in ("NASWEB_NB201_CSV",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _limit_child(limits: SandboxLimits, with_gpu: bool) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        if limits.memory_mb and not with_gpu:
            size = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        process.wait()


def tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` characters of a text file ('' if it does not exist yet)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def run_user_code(
    entry: str,
    payload: dict[str, Any],
    *,
    scratch: Path,
    limits: SandboxLimits,
    modules: dict[str, str] | None = None,
    log_path: Path | None = None,
    gpu: str | None = None,
    threads: int = 1,
    on_tick: Callable[[str], bool] | None = None,
    tick_s: float = 1.0,
) -> Any:
    """Run ``usercode.entrypoints.<entry>(payload)`` in a limited child process and return its result.

    ``modules`` maps file names (``user_module.py``) to source written into ``scratch``.
    ``on_tick(log_tail)`` is called about every ``tick_s`` seconds while the child runs; when it
    returns ``False`` the child is killed and :class:`SandboxError` ``cancelled`` is raised.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    for name, source in (modules or {}).items():
        (scratch / name).write_text(source)
    (scratch / PAYLOAD).write_text(json.dumps(payload))
    output = scratch / OUTPUT
    output.unlink(missing_ok=True)
    log_path = log_path or scratch / "child.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usercode.child", entry, str(scratch)],
            cwd=scratch, env=_child_environment(scratch, gpu, threads), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_child(limits, gpu not in (None, "cpu")),
        )
    deadline = time.monotonic() + limits.wall_s
    next_tick = time.monotonic() + tick_s
    cpu_used = 0.0
    try:
        while True:
            # wait4, not Popen.wait: it also says how much CPU the child itself used.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu_used = usage.ru_utime + usage.ru_stime
                break
            now = time.monotonic()
            if now > deadline:
                _kill_group(process)
                raise SandboxError("timeout", f"user code ran past the wall-clock limit of {limits.wall_s:g} s "
                                   "(NASWEB_SANDBOX_WALL_S)", tail(log_path))
            if on_tick is not None and now >= next_tick:
                next_tick = now + tick_s
                if not on_tick(tail(log_path)):
                    _kill_group(process)
                    raise SandboxError("cancelled", "stopped: the search was cancelled", tail(log_path))
            time.sleep(0.05)
    finally:
        if process.returncode is None:
            _kill_group(process)
        # Reap grandchildren (torchrun workers) left in the child's process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    answer = json.loads(output.read_text()) if output.exists() else None
    if answer is not None and answer.get("ok"):
        return answer["result"]
    if answer is not None:
        kind = "memory" if answer.get("type") == "MemoryError" else "error"
        message = answer["error"]
        if kind == "memory":
            message = f"user code ran out of memory (limit {limits.memory_mb} MB, NASWEB_SANDBOX_MEMORY_MB): {message}"
        raise SandboxError(kind, message, answer.get("traceback", ""))
    code = process.returncode if process.returncode is not None else -signal.SIGKILL
    if code < 0 and (-code == signal.SIGXCPU or (-code == signal.SIGKILL and cpu_used >= limits.cpu_s)):
        raise SandboxError("cpu", f"user code used more than {limits.cpu_s} CPU seconds (NASWEB_SANDBOX_CPU_S)",
                           tail(log_path))
    reason = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    raise SandboxError("crashed", f"user code stopped without an answer ({reason})", tail(log_path))
