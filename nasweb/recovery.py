"""The watchdog each worker runs: every app's rules for finding lost work, run every few seconds.

A message can vanish: a worker SIGKILLed while holding it (the filesystem broker deletes a
message when it hands it out), or a Redis restart without persistence. A worker can die with
its work ``running``. The database always knows what should be happening, so each app that has
lost-work rules keeps them in its own ``<app>/recovery.py``::

    QUEUES = ("gpu",)                                   # queues whose waiting messages the rules look at
    def find_lost_work(*, now, queue_sizes) -> dict[str, list[int]]: ...   # kind -> ids to send again
    def resend_lost_work(found: dict[str, list[int]]) -> None: ...

and this module finds those modules among ``INSTALLED_APPS`` and runs them. Running work beats
every couple of seconds (``HEARTBEAT_S``); work silent for ``NASWEB_HEARTBEAT_STALE_S`` (10 s)
is taken to be lost with its worker. With a round every ``NASWEB_RECOVERY_INTERVAL_S`` (3 s), a
killed worker's evaluation is sent again within about 13 s.

Duplicated messages are harmless: every task claims its work with a conditional update.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType

from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.module_loading import module_has_submodule

logger = logging.getLogger(__name__)

#: how often running work records that it is alive (seconds); NASWEB_HEARTBEAT_STALE_S must allow
#: several missed beats (a busy database, a slow tick)
HEARTBEAT_S = 2.0

#: queue -> messages waiting in it
QueueSizes = Mapping[str, int]


@contextlib.contextmanager
def keep_beating(beat: Callable[[], object], every: float = HEARTBEAT_S) -> Iterator[None]:
    """Call ``beat`` every ``every`` seconds from a thread while the block runs.

    For work that cannot tick by itself for a while (waiting for a GPU, reading a large space before
    the sandbox starts): silent for NASWEB_HEARTBEAT_STALE_S it would be taken for lost and run twice.
    The thread dies with the process, so a killed worker still stops beating.
    """
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(every):
                try:
                    beat()
                except Exception:  # a missed beat is retried; the work itself must not fail for it
                    logger.warning("heartbeat failed", exc_info=True)
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=run, name="nasweb-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def app_rules() -> list[ModuleType]:
    """The ``recovery`` module of every installed app that has one, in INSTALLED_APPS order."""
    found = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "recovery") and config.name != __name__.rpartition(".")[0]:
            found.append(importlib.import_module(f"{config.name}.recovery"))
    return found


def queue_sizes(queues: tuple[str, ...]) -> dict[str, int] | None:
    """Messages waiting in each queue, or None when the broker cannot tell (it is down)."""
    from nasweb.celery import app

    sizes: dict[str, int] = {}
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues:
                try:
                    sizes[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # queue unknown to this transport yet: nothing waits in it
                    sizes[queue] = 0
    except Exception as exc:  # broker down: try again next round
        logger.info("recovery: broker not reachable (%s)", exc)
        return None
    return sizes


def recover_lost_work() -> dict[str, int]:
    """One watchdog round over every app's rules; returns how many messages of each kind were sent."""
    rules = app_rules()
    queues = tuple(dict.fromkeys(queue for module in rules for queue in module.QUEUES))
    sizes = queue_sizes(queues)
    if sizes is None:  # sending now would only fail; the next round runs once the broker answers
        return {}
    now = timezone.now()
    sent: dict[str, int] = {}
    for module in rules:
        found = module.find_lost_work(now=now, queue_sizes=sizes)
        module.resend_lost_work(found)
        sent.update({kind: len(ids) for kind, ids in found.items()})
    if any(sent.values()):
        logger.warning("recovery: sent lost work again: %s", sent)
    return sent


class Watchdog(threading.Thread):
    """Runs :func:`recover_lost_work` every ``NASWEB_RECOVERY_INTERVAL_S`` seconds in a worker."""

    def __init__(self) -> None:
        super().__init__(name="nasweb-recovery", daemon=True)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(settings.NASWEB_RECOVERY_INTERVAL_S):
            try:
                recover_lost_work()
            except Exception:  # the watchdog must outlive a database or broker hiccup
                logger.exception("recovery round failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop_event.set()
