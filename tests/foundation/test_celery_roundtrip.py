"""A task goes through a real broker to a real worker process and its result comes back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasweb.celery import app as celery_app
from nasweb.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
def test_task_sent_through_redis_runs_in_a_worker_process(start_worker) -> None:
    assert celery_app.conf.broker_url.startswith("redis://")
    worker = start_worker(queues="search")
    answer = ping.apply_async(args=["through-redis"], queue="search").get(timeout=60, interval=0.1)
    assert answer["payload"] == "through-redis"
    assert answer["pid"] == worker.process.pid  # solo pool: the task ran in that very process
    assert answer["pid"] != os.getpid()


def test_task_round_trips_through_the_embedded_broker_with_no_environment(tmp_path: Path) -> None:
    """No DATABASE_URL, no CELERY_BROKER_URL: SQLite and the filesystem broker under var/."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update({"NASWEB_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "nasweb", "worker", "-Q", "search", "-P", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", "ping_worker", "--timeout", "90"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )
        assert result.returncode == 0, result.stderr + (tmp_path / "worker.log").read_text()
        assert f"(pid {worker.pid})" in result.stdout
        assert any((tmp_path / "var" / "broker").iterdir()), "the filesystem broker left no folders"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


def test_ping_worker_fails_clearly_when_no_worker_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env["NASWEB_VAR_DIR"] = str(tmp_path / "var")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    result = subprocess.run(
        [sys.executable, "manage.py", "ping_worker", "--timeout", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "no worker answered" in result.stderr
