"""A cgroup (v2, or v1 memory + pids) that limits a sandbox's whole process tree and kills it at the end."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str | None) -> str | None:
    """This process's cgroup path in the v1 hierarchy of ``controller`` (``None``: the v2 hierarchy)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            names = controllers.split(",") if controllers else []
            if (controller is None and not names) or (controller is not None and controller in names):
                return path
    return None


def _remove_stale(parent: Path, min_age_s: float = 300.0) -> None:
    """Remove sandbox cgroups left by a worker that was killed; one that still holds a process stays."""
    now = time.time()
    for folder in parent.glob("nasweb-sandbox-*"):
        with contextlib.suppress(OSError):  # busy (processes in it) or gone already
            if now - folder.stat().st_mtime > min_age_s:
                folder.rmdir()


class TreeCgroup:
    """One fresh cgroup per sandbox run: memory and task limits over every process the sandbox starts.

    ``TreeCgroup.create(...)`` returns ``None`` when this machine gives the worker no writable cgroup
    with memory and pids controllers; the sandbox then falls back to rlimits and its own watchdog.
    A process joins with :meth:`join` (called in the child before ``exec``), so everything it forks
    is counted; :meth:`destroy` kills whatever is left and removes the folders.
    """

    def __init__(self, folders: dict[str, Path], version: int) -> None:
        self.folders = folders  # controller ("memory", "pids", or "unified") -> cgroup folder
        self.version = version

    @classmethod
    def create(cls, *, memory_bytes: int | None, max_tasks: int) -> TreeCgroup | None:
        name = f"nasweb-sandbox-{uuid.uuid4().hex[:12]}"
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():
                cgroup = cls._create_v2(name)
            elif (CGROUP_ROOT / "memory").is_dir() and (CGROUP_ROOT / "pids").is_dir():
                cgroup = cls._create_v1(name)
            else:
                return None
        except OSError as exc:
            logger.debug("no writable cgroup for the sandbox (%s); using rlimits and the watchdog", exc)
            return None
        try:
            cgroup._limit(memory_bytes, max_tasks)
        except OSError as exc:
            logger.debug("cannot set limits on %s (%s); using rlimits and the watchdog", cgroup.folders, exc)
            cgroup.destroy()
            return None
        return cgroup

    @classmethod
    def _create_v2(cls, name: str) -> TreeCgroup:
        own = _own_path(None)
        if own is None:
            raise OSError("this process is in no cgroup v2")
        parent = CGROUP_ROOT / own.lstrip("/")
        available = (parent / "cgroup.subtree_control").read_text().split()
        missing = [c for c in ("memory", "pids") if c not in available]
        if missing:
            # Only possible when the parent holds no process itself (cgroup v2's no-internal-process rule).
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
        _remove_stale(parent)
        folder = parent / name
        folder.mkdir()
        return cls({"unified": folder}, 2)

    @classmethod
    def _create_v1(cls, name: str) -> TreeCgroup:
        folders: dict[str, Path] = {}
        try:
            for controller in ("memory", "pids"):
                own = _own_path(controller) or "/"
                _remove_stale(CGROUP_ROOT / controller / own.lstrip("/"))
                folder = CGROUP_ROOT / controller / own.lstrip("/") / name
                folder.mkdir()
                folders[controller] = folder
        except OSError:
            cls(folders, 1).destroy()
            raise
        return cls(folders, 1)

    def _limit(self, memory_bytes: int | None, max_tasks: int) -> None:
        if self.version == 2:
            folder = self.folders["unified"]
            (folder / "pids.max").write_text(str(max_tasks))
            if memory_bytes:
                (folder / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting on this machine
                    (folder / "memory.swap.max").write_text("0")
            return
        (self.folders["pids"] / "pids.max").write_text(str(max_tasks))
        if memory_bytes:
            (self.folders["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memsw = self.folders["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                with contextlib.suppress(OSError):
                    memsw.write_text(str(memory_bytes))

    def join(self) -> None:
        """Move the calling process into this cgroup (between ``fork`` and ``exec``)."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for folder in self.folders.values():
            with contextlib.suppress(OSError):
                found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
        return sorted(found)

    def out_of_memory(self) -> bool:
        """Whether the kernel refused or reclaimed memory at the limit (an OOM kill in the tree)."""
        try:
            if self.version == 2:
                events = (self.folders["unified"] / "memory.events").read_text().split()
                return int(dict(zip(events[::2], events[1::2], strict=False)).get("oom_kill", "0")) > 0
            control = (self.folders["memory"] / "memory.oom_control").read_text().split()
            values = dict(zip(control[::2], control[1::2], strict=False))
            if "oom_kill" in values:
                return int(values["oom_kill"]) > 0
            return int((self.folders["memory"] / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def kill(self, timeout_s: float = 10.0) -> None:
        """SIGKILL every process in the cgroup until it is empty (new forks meet the task limit)."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.folders["unified"] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def destroy(self) -> None:
        """Kill what is left and remove the cgroup folders."""
        self.kill()
        for folder in self.folders.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # zombies still being reaped
            else:
                logger.warning("could not remove the sandbox cgroup %s", folder)
