"""``/healthz``: is the database reachable, is the broker reachable. GET only, writes nothing."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "unreachable"; report it, do not crash
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "vendor": connection.vendor}
    return {"ok": True, "vendor": connection.vendor, "ms": round(1000 * (time.perf_counter() - started), 1)}


def _check_broker() -> dict:
    started = time.perf_counter()
    url = settings.CELERY_BROKER_URL
    transport = urlsplit(url).scheme
    try:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        with Connection(url, transport_options=options, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if transport.startswith("redis"):
                conn.default_channel.client.ping()
    except Exception as exc:  # any transport error means "unreachable"
        return {"ok": False, "transport": transport, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "transport": transport, "ms": round(1000 * (time.perf_counter() - started), 1)}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
