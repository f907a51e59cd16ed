"""Fixtures shared by the whole suite: users, real worker processes, free ports."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def start_worker(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real ``celery worker`` processes on the test database; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(**options: object) -> WorkerProcess:
        worker = WorkerProcess(tmp_path, **options)  # type: ignore[arg-type]
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def users(db: None, settings) -> dict:
    """An owner, a teammate and an outsider (STYLE.md's base cast)."""
    from django.contrib.auth import get_user_model

    # PBKDF2 costs ~0.3 s per user on these machines; tests need no strong hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    model = get_user_model()
    return {
        role: model.objects.create_user(role, password=f"{role}-pass-123")
        for role in ("owner", "teammate", "outsider")
    }
