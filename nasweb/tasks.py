"""Tasks that belong to no app: the broker round-trip used by health checks and tests."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="nasweb.ping", queue="search", time_limit=30)
def ping(payload: str = "pong") -> dict:
    """Echo ``payload`` with the worker's host name and pid; proves a message went through the broker."""
    return {"payload": payload, "worker": socket.gethostname(), "pid": os.getpid()}
