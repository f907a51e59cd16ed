"""Send one ``nasweb.ping`` task through the broker and wait for a worker's answer."""

from __future__ import annotations

import secrets
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError

from nasweb.tasks import ping


class Command(BaseCommand):
    help = "Round-trip a trivial task through the broker; exits non-zero if no worker answers in time."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
        parser.add_argument("--queue", default="search", help="queue to send the task to")

    def handle(self, *args: Any, **options: Any) -> None:
        token = secrets.token_hex(8)
        result = ping.apply_async(args=[token], queue=options["queue"])
        try:
            answer = result.get(timeout=options["timeout"], interval=0.2)
        except CeleryTimeout:
            raise CommandError(
                f"no worker answered on queue {options['queue']!r} within {options['timeout']}s; "
                "is a worker running (make run starts one)?"
            ) from None
        if answer.get("payload") != token:
            raise CommandError(f"worker answered with the wrong payload: {answer!r}")
        self.stdout.write(f"worker {answer['worker']} (pid {answer['pid']}) answered on {options['queue']!r}")
