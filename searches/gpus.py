"""Handing out this machine's GPUs to evaluations, one evaluation per GPU.

``NASWEB_GPUS`` lists the device ids a ``gpu``-queue worker may use. Each evaluation takes
as many as it needs with an exclusive ``flock`` on ``var/gpu-locks/<id>.lock``, so several
worker processes on one machine never share a device; the lock dies with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings


def configured_gpus() -> list[str]:
    return [gpu.strip() for gpu in settings.NASWEB_GPUS.split(",") if gpu.strip()]


class NoGpuAvailable(Exception):
    pass


@contextlib.contextmanager
def gpu_slots(count: int, *, wait_s: float = 3600.0) -> Iterator[str]:
    """Hold ``count`` GPUs; yields ``CUDA_VISIBLE_DEVICES`` (``"cpu"`` when none are needed or configured)."""
    gpus = configured_gpus()
    if count <= 0 or not gpus:
        yield "cpu"
        return
    if count > len(gpus):
        raise NoGpuAvailable(f"an evaluation needs {count} GPUs but this worker has {len(gpus)} (NASWEB_GPUS)")
    folder = Path(settings.VAR_DIR) / "gpu-locks"
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    held: list[tuple[str, int]] = []
    try:
        while len(held) < count:
            for gpu in gpus:
                if len(held) == count or any(gpu == taken for taken, _ in held):
                    continue
                fd = os.open(folder / f"{gpu}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                held.append((gpu, fd))
            if len(held) < count:
                if time.monotonic() > deadline:
                    raise NoGpuAvailable(f"no {count} free GPUs among {gpus} within {wait_s:g} s")
                time.sleep(1.0)
        yield ",".join(gpu for gpu, _ in held)
    finally:
        for _, fd in held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
