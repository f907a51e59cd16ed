"""The bubblewrap (``bwrap``) command line that isolates one sandbox run.

Why bubblewrap: it is a small, audited, Debian-packaged tool (the sandbox of Flatpak) that only
sets up namespaces and mounts and then gets out of the way; its init process in the new PID
namespace takes every process of the sandbox with it when it ends. nsjail does more (seccomp
policies, cgroups) but is not packaged in Debian stable and needs a protobuf config; the cgroup
part we need is a few files (:mod:`usercode.cgroup`).

What the sandbox sees: a tmpfs root with read-only ``/usr`` (and the merged-usr links), the
interpreter and the virtualenv, the project packages user code may import (``nastune``,
``examples``, ``usercode``), a minimal ``/etc`` (no host accounts), its own ``/proc``, ``/dev``,
``/tmp`` and ``/dev/shm``, the read-only inputs the caller names, the device nodes of its GPUs, and
one writable scratch folder. Fresh user, PID, network (loopback only), IPC and UTS namespaces.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("nastune", "examples", "usercode")
SANDBOX_UID = 65534
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "mime.types")
PASSWD = f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:/nonexistent:/usr/sbin/nologin\n"
GROUP = f"sandbox:x:{SANDBOX_UID}:\n"
HOSTS = "127.0.0.1 localhost sandbox\n::1 localhost sandbox\n"  # torchrun looks its own host name up
NSSWITCH = "passwd: files\ngroup: files\nhosts: files\n"
NVIDIA_SHARED_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


def find_bwrap() -> str | None:
    """Path of the ``bwrap`` executable, or ``None`` when bubblewrap is not installed."""
    return shutil.which("bwrap")


@dataclass
class BwrapCommand:
    """bwrap's options, the command it runs, and synthetic read-only files (destination, content)."""

    options: list[str]
    command: list[str]
    data: list[tuple[str, bytes]] = field(default_factory=list)

    def argv(self, data_fds: Sequence[int]) -> list[str]:
        """The command line, reading the synthetic files from ``data_fds`` (one per ``data`` entry, in order)."""
        files: list[str] = []
        for fd, (destination, _) in zip(data_fds, self.data, strict=True):
            files += ["--ro-bind-data", str(fd), destination]
        # The root is bwrap's own tmpfs, holding the mount points made above; nothing may be added to it.
        return [*self.options, *files, "--remount-ro", "/", "--", *self.command]


def _root_links() -> list[str]:
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _interpreter_paths() -> list[Path]:
    """The Python installation and the virtualenv, unless ``/usr`` already holds them."""
    paths: list[Path] = []
    for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}:
        if not (prefix == Path("/usr") or Path("/usr") in prefix.parents):
            paths.append(prefix)
    return sorted(paths)


def gpu_device_nodes(gpu: str | None) -> tuple[list[str], str]:
    """Device nodes a run on ``gpu`` ("0", "1,3"; ``None``/"cpu": none) may use, and its CUDA_VISIBLE_DEVICES.

    Only the nodes of the given GPUs are mounted, so CUDA inside enumerates exactly those, as
    devices ``0..k-1``. Ids that are not plain indices (UUIDs, MIG) get every NVIDIA node and the
    ids themselves as CUDA_VISIBLE_DEVICES.
    """
    if gpu in (None, "", "cpu"):
        return [], ""
    ids = [part.strip() for part in gpu.split(",") if part.strip()]
    if all(part.isdigit() for part in ids):
        nodes = [f"/dev/nvidia{part}" for part in ids]
        visible = ",".join(str(i) for i in range(len(ids)))
    else:
        nodes = sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))
        visible = ",".join(ids)
    nodes += [f"/dev/{name}" for name in NVIDIA_SHARED_NODES]
    if Path("/dev/nvidia-caps").is_dir():
        nodes.append("/dev/nvidia-caps")
    return nodes, visible


def bwrap_command(
    bwrap: str,
    command: Sequence[str],
    *,
    scratch: Path,
    read_only: Sequence[Path] = (),
    gpu: str | None = None,
    tmpfs_bytes: int | None = None,
) -> BwrapCommand:
    """The full ``bwrap ... -- command`` line; ``scratch`` and ``read_only`` keep their host paths inside."""
    args = [
        bwrap,
        "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        # No user namespace inside: it would hand user code capabilities over its own mounts.
        "--disable-userns",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/usr", "/usr",
        *_root_links(),
        "--proc", "/proc",
        "--dev", "/dev",
    ]
    size = ["--size", str(tmpfs_bytes)] if tmpfs_bytes else []
    args += [*size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for prefix in _interpreter_paths():
        args += ["--ro-bind", str(prefix), str(prefix)]
    for package in PROJECT_PACKAGES:
        args += ["--ro-bind-try", str(ROOT / package), str(ROOT / package)]
    nodes, _ = gpu_device_nodes(gpu)
    for node in nodes:
        args += ["--dev-bind-try", node, node]
    if nodes:
        # NVML and the CUDA driver read the PCI topology; /sys gives read access to no device.
        args += ["--ro-bind", "/sys", "/sys"]
    for path in read_only:
        resolved = Path(path).resolve()
        args += ["--ro-bind", str(resolved), str(resolved)]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    data = [("/etc/passwd", PASSWD.encode()), ("/etc/group", GROUP.encode()), ("/etc/hosts", HOSTS.encode()),
            ("/etc/hostname", b"sandbox\n"), ("/etc/nsswitch.conf", NSSWITCH.encode())]
    return BwrapCommand(options=args, command=list(command), data=data)
