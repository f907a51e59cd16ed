"""The Celery application: named queues, late acknowledgement, per-task time limits.

Queues:
* ``profile``  - profiling chunks of a search space (CPU, runs user code in a sandbox)
* ``pretrain`` - pretraining a space's surrogate (CPU)
* ``search``   - search steps: refit the surrogate, propose the next evaluations (CPU, short)
* ``gpu``      - training evaluations (one per GPU)

``task_acks_late`` with a prefetch of one means a message is acknowledged only after its
task finished, so a worker killed mid-task leaves the message to be delivered again.
Every task must therefore be idempotent (see STYLE.md).
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nasweb.settings")

QUEUES = ("profile", "pretrain", "search", "gpu")

app = Celery("nasweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, routing_key=name) for name in QUEUES]
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **_: object) -> None:
    """The filesystem transport needs its folders to exist before the first message."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


_watchdog = None


@worker_ready.connect
def _start_watchdog(**_: object) -> None:
    """Each worker re-sends work whose message was lost (see nasweb.recovery)."""
    global _watchdog
    from django.conf import settings

    from nasweb.recovery import Watchdog

    if settings.NASWEB_RECOVERY_INTERVAL_S > 0 and _watchdog is None:
        _watchdog = Watchdog()
        _watchdog.start()


@worker_ready.connect
def _check_sandbox(**_: object) -> None:
    """Say at start-up, not only at the first run, when this worker will refuse user code."""
    import logging

    from usercode.bwrap import find_bwrap
    from usercode.sandbox import sandbox_isolation

    logger = logging.getLogger("usercode.sandbox")
    if sandbox_isolation() == "none":
        logger.warning("NASWEB_SANDBOX=none: this worker runs user code WITHOUT isolation; development only")
    elif find_bwrap() is None:
        logger.error("bubblewrap (bwrap) is not installed: this worker refuses to run user code (validation, "
                     "profiling, evaluations). Install it (apt-get install bubblewrap); see README, 'User code'")


@worker_shutdown.connect
def _stop_watchdog(**_: object) -> None:
    if _watchdog is not None:
        _watchdog.stop()


@worker_process_init.connect
def _limit_torch_threads(**_: object) -> None:
    """Surrogate fitting and scoring are small matrix products: one thread per worker process is
    faster than two fighting over the cores (a search step's ask: 0.23 s vs 0.46 s on 2 cores)."""
    import torch
    from django.conf import settings

    torch.set_num_threads(settings.NASWEB_TORCH_THREADS)
