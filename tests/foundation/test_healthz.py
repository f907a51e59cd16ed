"""``/healthz`` reports database and broker reachability and writes nothing."""

from __future__ import annotations


def test_healthz_reports_database_and_broker_reachable(client, db) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_healthz_reports_an_unreachable_broker(client, db, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"] is True


def test_healthz_refuses_writes(client, db) -> None:
    assert client.post("/healthz").status_code == 405
