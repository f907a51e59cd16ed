"""Settings come from the environment; malformed values stop start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")


def run_django(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    clean.update({"NASWEB_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "nasweb.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL="),
        ("DATABASE_URL", "postgres://postgres@localhost:5432", "names no database"),
        ("CELERY_BROKER_URL", "amqp://guest@localhost//", "CELERY_BROKER_URL="),
        ("NASWEB_MAX_UPLOAD_MB", "lots", "NASWEB_MAX_UPLOAD_MB='lots' is not an integer"),
        ("NASWEB_MAX_ENCODINGS", "0", "NASWEB_MAX_ENCODINGS=0 is too small"),
        ("SECRET_KEY", "short", "SECRET_KEY is only 5 characters"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not one of"),
    ],
)
def test_malformed_variable_stops_startup_naming_it(tmp_path: Path, variable: str, value: str, message: str) -> None:
    result = run_django(tmp_path, "print(settings.DEBUG)", **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_defaults_need_no_installed_service(tmp_path: Path) -> None:
    result = run_django(
        tmp_path,
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, settings.DEBUG)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "False"]


def test_secret_key_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = run_django(tmp_path, "print(settings.SECRET_KEY)")
    second = run_django(tmp_path, "print(settings.SECRET_KEY)")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 50
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.read_text().strip() == first.stdout.strip()
    assert key_file.stat().st_mode & 0o077 == 0


def test_postgres_and_redis_urls_are_understood(tmp_path: Path) -> None:
    result = run_django(
        tmp_path,
        "d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST'], settings.CELERY_BROKER_URL)",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "test", "127.0.0.1", "redis://127.0.0.1:6379/0",
    ]


def test_debug_is_off_unless_set(settings) -> None:
    assert settings.DEBUG is False


def test_celery_redelivers_a_killed_workers_task(settings) -> None:
    from nasweb.celery import QUEUES, app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert {queue.name for queue in app.conf.task_queues} == set(QUEUES) == {"profile", "pretrain", "search", "gpu"}
    assert app.conf.task_time_limit > 0
