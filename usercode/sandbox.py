"""Run user code (``encoding_to_net`` modules, evaluator modules) isolated by bubblewrap, with limits.

The parent side, :func:`run_user_code`, is called by Celery tasks. It writes the user's module
and a JSON payload into a scratch folder and starts ``python -m usercode.child`` there:

* isolated by ``bwrap`` (:mod:`usercode.bwrap`): fresh user/PID/network/IPC/mount namespaces, no
  network but a private loopback, read-only interpreter, virtualenv and project code, the named
  read-only inputs, one writable scratch folder, private ``/tmp`` and ``/dev/shm``;
* limits on the whole process tree: memory and task count in a fresh cgroup
  (:mod:`usercode.cgroup`); where the worker has no writable cgroup, ``RLIMIT_NPROC`` inside the
  sandbox's user namespace plus a watchdog here that sums the memory of the sandbox's processes
  and kills its PID namespace; per process ``RLIMIT_AS`` (not with a GPU: CUDA reserves huge
  virtual ranges), ``RLIMIT_CPU``, no core files;
* a wall-clock timeout enforced here; at the end, timeout or not, the sandbox's PID namespace is
  killed, so nothing it started (``setsid`` grandchildren included) outlives it;
* an environment holding no secret: no ``SECRET_KEY``, ``DATABASE_URL`` or broker URL.

``NASWEB_SANDBOX=none`` (development only) runs the child without bubblewrap, as a plain limited
child process, and logs a warning on every run. Without bubblewrap installed and without that
opt-out, :func:`run_user_code` refuses with :class:`SandboxError` ``unavailable``.

The child side (:mod:`usercode.child`) imports neither Django nor Celery. Web processes never call
this module: user code runs only in workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import resource
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usercode.bwrap import ROOT, bwrap_command, find_bwrap, gpu_device_nodes
from usercode.cgroup import TreeCgroup

logger = logging.getLogger(__name__)

ISOLATIONS = ("bwrap", "none")
OUTPUT = "output.json"  # written by the child (usercode.child) into the scratch folder
PAYLOAD = "payload.json"
_PR_SET_PDEATHSIG = 1
_WATCHDOG_S = 0.1
_PASSED_ON = ("NASWEB_NB201_CSV",)  # environment variables user code sees, each naming a public data file


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox run. ``memory_mb`` bounds the whole process tree (``None``: unlimited);
    ``processes`` bounds the tasks (processes and threads) alive in it at once."""

    memory_mb: int | None = 8192
    cpu_s: int = 3600
    wall_s: float = 1800.0
    processes: int = 512


class SandboxError(Exception):
    """User code failed. ``kind`` is ``error`` (it raised), ``timeout``, ``cpu``, ``memory``, ``processes``,
    ``crashed`` (killed by a signal or exited without an answer), ``cancelled`` or ``unavailable``
    (bubblewrap is missing and the operator did not opt out)."""

    def __init__(self, kind: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


def sandbox_isolation() -> str:
    """The isolation chosen by ``NASWEB_SANDBOX`` (``bwrap`` by default, ``none`` for development)."""
    value = os.environ.get("NASWEB_SANDBOX", "").strip() or "bwrap"
    if value not in ISOLATIONS:
        raise ValueError(f"NASWEB_SANDBOX is {value!r}; use 'bwrap' (the default) or 'none' (development only)")
    return value


def _child_environment(scratch: Path, gpu: str | None, threads: int, isolated: bool) -> dict[str, str]:
    _, visible = gpu_device_nodes(gpu)
    env = {
        "PATH": os.pathsep.join([str(Path(_python()).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch),
        # Inside bubblewrap /tmp is a private tmpfs; without it, the scratch folder.
        "TMPDIR": "/tmp" if isolated else str(scratch),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": visible if isolated else ("" if gpu in (None, "cpu") else str(gpu)),
        # User code reads local datasets only; never let a library reach a hub.
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(scratch / ".hf"),
    }
    for name in _PASSED_ON:
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _shared_data() -> list[Path]:
    """Public data files the environment passes on to user code (the NAS-Bench-201 table), shown read-only."""
    return [Path(os.environ[name]) for name in _PASSED_ON
            if os.environ.get(name) and Path(os.environ[name]).is_file()]


def _python() -> str:
    """This interpreter by a path the sandbox has: the virtualenv's own, with no symlinked folder on the way."""
    candidate = Path(sys.prefix).resolve() / "bin" / Path(sys.executable).name
    return str(candidate) if candidate.exists() else sys.executable


def _limit_child(limits: SandboxLimits, with_gpu: bool, cgroup: TreeCgroup | None) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if cgroup is not None:
            cgroup.join()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        if limits.memory_mb and not with_gpu:
            size = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def tail(path: Path, limit: int = 4000, *, within: Path | None = None) -> str:
    """The last ``limit`` characters of a text file ('' if it does not exist yet, or is not a plain file).

    ``within``: ``path`` lies in this folder, which user code may write while it runs; no symlink
    on the way from it is followed, so a planted link cannot make the worker read a host file.
    """
    try:
        fd = _open_within(within, path) if within is not None else os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", errors="replace")


def _open_within(folder: Path, path: Path) -> int:
    """Open ``path`` for reading, walking down from ``folder`` without following any symlink."""
    parts = Path(path).relative_to(folder).parts
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)


class _Namespace:
    """The sandbox's PID namespace seen from the host: its processes, their memory, and how to end them."""

    def __init__(self, init_pid: int) -> None:
        self.init_pid = init_pid
        try:
            self.inode: str | None = os.readlink(f"/proc/{init_pid}/ns/pid")
        except OSError:
            self.inode = None  # already gone

    def pids(self) -> list[int]:
        if self.inode is None:
            return []
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry.name}/ns/pid") == self.inode:
                        found.append(int(entry.name))
        return found

    def usage(self) -> tuple[int, int]:
        """(bytes of anonymous and shared memory, tasks) summed over the namespace's processes."""
        memory = tasks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(("RssAnon:", "RssShmem:")):
                        memory += int(line.split()[1]) * 1024
                    elif line.startswith("Threads:"):
                        tasks += int(line.split()[1])
        return memory, tasks

    def kill(self) -> None:
        # Killing the namespace's init makes the kernel SIGKILL every process in it. Only pids still
        # in the namespace are signalled: a pid that ended may have been reused by another process.
        for pid in sorted(self.pids(), key=lambda pid: pid != self.init_pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _read_info(read_fd: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """bwrap's ``--info-fd`` JSON (``child-pid``: the sandbox's init, as a host pid); {} if bwrap failed."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        data += chunk
        with contextlib.suppress(ValueError):
            return dict(json.loads(data))
    with contextlib.suppress(ValueError):
        return dict(json.loads(data))
    return {}


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
    read_only: Sequence[Path] = (),
    isolation: str | None = None,
    cgroup: bool = True,
) -> Any:
    """Run ``usercode.entrypoints.<entry>(payload)`` in the sandbox and return its result.

    ``modules`` maps file names (``user_module.py``) to source written into ``scratch``, the one
    folder the sandbox may write; ``read_only`` are host paths it sees read-only at the same place
    (a dataset folder). ``on_tick(log_tail)`` is called about every ``tick_s`` seconds while the
    code runs; when it returns ``False`` the sandbox is killed and :class:`SandboxError`
    ``cancelled`` is raised. ``isolation`` defaults to ``NASWEB_SANDBOX``. ``cgroup=False`` limits
    the process tree as on a machine without a writable cgroup (rlimits and the watchdog).
    """
    isolation = isolation or sandbox_isolation()
    bwrap = find_bwrap() if isolation == "bwrap" else None
    if isolation == "bwrap" and bwrap is None:
        raise SandboxError(
            "unavailable", "refusing to run user code: bubblewrap (bwrap) is not installed on this worker. "
            "Install it (Debian/Ubuntu: apt-get install bubblewrap), or for development only set NASWEB_SANDBOX=none")
    if isolation == "none":
        logger.warning("NASWEB_SANDBOX=none: running user code (%s) WITHOUT isolation; development only", entry)
    for path in read_only:
        if not Path(path).exists():
            raise FileNotFoundError(f"read-only input {path} does not exist")

    scratch.mkdir(parents=True, exist_ok=True)
    scratch = scratch.resolve()
    # Unlink first: a scratch folder used before may hold links planted by user code.
    for name, source in [*(modules or {}).items(), (PAYLOAD, json.dumps(payload))]:
        (scratch / name).unlink(missing_ok=True)
        (scratch / name).write_text(source)
    output = scratch / OUTPUT
    output.unlink(missing_ok=True)
    log_path = log_path or scratch / "child.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A log in the scratch folder may be replaced by the user code (with a link to a host file, say).
    log_within = scratch if log_path.resolve().is_relative_to(scratch) else None
    if log_within is not None and log_path.is_symlink():
        log_path.unlink()  # never append the run's output to whatever a planted link names

    def log_tail() -> str:
        return tail(log_path, within=log_within)

    with_gpu = gpu not in (None, "cpu")
    memory_bytes = limits.memory_mb * 1024 * 1024 if limits.memory_mb else None
    tree = TreeCgroup.create(memory_bytes=memory_bytes, max_tasks=limits.processes) if bwrap and cgroup else None
    child = [_python(), "-m", "usercode.child", entry, str(scratch)]
    pass_fds: list[int] = []
    info_read = info_write = -1
    if bwrap is not None:
        # RLIMIT_NPROC is set by the child inside the fresh user namespace, where it counts only the
        # sandbox's own tasks; set here it would count every process of the worker's user.
        command = bwrap_command(bwrap, [*child, str(limits.processes)], scratch=scratch,
                                read_only=[*read_only, *_shared_data()], gpu=gpu, tmpfs_bytes=memory_bytes)
        data_fds = []
        for _, content in command.data:
            read_end, write_end = os.pipe()
            os.write(write_end, content)  # small files: they fit in the pipe buffer
            os.close(write_end)
            data_fds.append(read_end)
        info_read, info_write = os.pipe()
        argv = command.argv(data_fds)
        argv[1:1] = ["--info-fd", str(info_write)]
        pass_fds = [*data_fds, info_write]
    else:
        argv = child

    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, cwd=scratch, env=_child_environment(scratch, gpu, threads, bwrap is not None),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=pass_fds,
                preexec_fn=_limit_child(limits, with_gpu, tree),
            )
    except BaseException:
        if tree is not None:
            tree.destroy()
        if info_read >= 0:
            os.close(info_read)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    namespace: _Namespace | None = None
    if bwrap is not None:
        info = _read_info(info_read)
        os.close(info_read)
        if "child-pid" in info:
            namespace = _Namespace(int(info["child-pid"]))
        else:
            _end(process, None, tree)
            if tree is not None:
                tree.destroy()
            raise SandboxError("unavailable", "bubblewrap could not create the sandbox (on Docker, give the workers "
                               "the security options of docker/compose.yaml): " + log_tail().strip()[-2000:])

    deadline = time.monotonic() + limits.wall_s
    next_tick = time.monotonic() + tick_s
    next_watch = time.monotonic()
    cpu_used = 0.0
    exceeded = ""
    try:
        while True:
            # wait4, not Popen.wait: it also says how much CPU the child tree used.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu_used = usage.ru_utime + usage.ru_stime
                break
            now = time.monotonic()
            if now > deadline:
                raise SandboxError("timeout", f"user code ran past the wall-clock limit of {limits.wall_s:g} s "
                                   "(NASWEB_SANDBOX_WALL_S)", log_tail())
            if on_tick is not None and now >= next_tick:
                next_tick = now + tick_s
                if not on_tick(log_tail()):
                    raise SandboxError("cancelled", "stopped: the search was cancelled", log_tail())
            if tree is None and namespace is not None and not exceeded and now >= next_watch:
                next_watch = now + _WATCHDOG_S
                exceeded = _watch(namespace, limits, memory_bytes)
                if exceeded:
                    namespace.kill()
            time.sleep(0.02)
    finally:
        _end(process, namespace, tree)
        oom = tree.out_of_memory() if tree is not None else exceeded == "memory"
        if tree is not None:
            tree.destroy()

    answer_text = tail(output, 50_000_000, within=scratch)
    try:
        answer = json.loads(answer_text) if answer_text else None
    except (ValueError, RecursionError):  # hostile answers: malformed, or nested deeper than the parser goes
        answer = None
    if not isinstance(answer, dict):
        answer = None
    if answer is not None and answer.get("ok"):
        return answer["result"]
    memory_message = f"user code ran out of memory (limit {limits.memory_mb} MB, NASWEB_SANDBOX_MEMORY_MB)"
    if answer is not None:
        # The answer file is in the user's scratch folder: take nothing in it for granted.
        error, details = str(answer.get("error", "user code failed")), str(answer.get("traceback", ""))
        if answer.get("type") == "MemoryError" or oom:
            raise SandboxError("memory", f"{memory_message}: {error}", details)
        raise SandboxError("error", error, details)
    if oom:
        raise SandboxError("memory", memory_message, log_tail())
    if exceeded == "processes":
        raise SandboxError("processes", f"user code started more than {limits.processes} processes and threads "
                           "(NASWEB_SANDBOX_PROCESSES)", log_tail())
    code = process.returncode if process.returncode is not None else -signal.SIGKILL
    if bwrap is not None and code - 128 in {member.value for member in signal.Signals}:
        code = 128 - code  # bwrap exits with 128 + the signal that killed the command
    if code < 0 and (-code == signal.SIGXCPU or (-code == signal.SIGKILL and cpu_used >= limits.cpu_s)):
        raise SandboxError("cpu", f"user code used more than {limits.cpu_s} CPU seconds (NASWEB_SANDBOX_CPU_S)",
                           log_tail())
    reason = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    raise SandboxError("crashed", f"user code stopped without an answer ({reason})", log_tail())


def _watch(namespace: _Namespace, limits: SandboxLimits, memory_bytes: int | None) -> str:
    """Which limit the sandbox's processes exceed together ('' if none): the fallback without a cgroup."""
    memory, tasks = namespace.usage()
    if memory_bytes and memory > memory_bytes:
        return "memory"
    if tasks > limits.processes:
        return "processes"
    return ""


def _end(process: subprocess.Popen, namespace: _Namespace | None, cgroup: TreeCgroup | None) -> None:
    """Kill everything the run started, whether it ended by itself or not, and reap the child."""
    if namespace is not None:
        namespace.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill()
    if process.returncode is None:
        process.wait()
