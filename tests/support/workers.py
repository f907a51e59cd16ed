"""Real Celery worker processes for integration tests (never CELERY_TASK_ALWAYS_EAGER)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """A DATABASE_URL naming the database the tests are using right now (the test database)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(Path(settings["NAME"]).resolve())
    user = quote(settings.get("USER") or "")
    password = quote(settings.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{settings.get('HOST') or 'localhost'}:{settings.get('PORT') or 5432}/{settings['NAME']}"


class WorkerProcess:
    """One ``celery worker`` subprocess on the test database and the configured broker."""

    def __init__(self, log_dir: Path, *, queues: str = "profile,pretrain,search,gpu", pool: str = "solo",
                 concurrency: int = 1, name: str = "test", extra_env: dict[str, str] | None = None,
                 bare: bool = True) -> None:
        """``bare``: without gossip, mingle and broker heartbeats (quicker start); False starts the worker
        with every consumer step, as ``make run`` does."""
        self.log_path = log_dir / f"worker-{name}-{time.monotonic_ns()}.log"
        env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "nasweb", "worker", "--queues", queues, "--pool", pool,
             "--concurrency", str(concurrency), "--loglevel", "INFO", "--hostname", f"{name}-{os.getpid()}@%h",
             *(["--without-gossip", "--without-mingle", "--without-heartbeat"] if bare else [])],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            return " ready." in self.log()

        wait_until(ready, timeout, interval=0.2, message=lambda: f"worker not ready:\n{self.log()}")
        return self

    def task_succeeded_after(self, task: str, earlier_task_id: str) -> bool:
        """Whether a ``task`` (a task name, e.g. ``searches.step``) succeeded in this worker after the
        task with id ``earlier_task_id`` did. The solo pool runs one task after the other, so the
        order of these log lines is the order the tasks ran in."""
        log = self.log()
        earlier = re.search(rf"Task [\w.]+\[{re.escape(earlier_task_id)}\] succeeded", log)
        later = rf"Task {re.escape(task)}\[[^\]]+\] succeeded"
        return earlier is not None and re.search(later, log[earlier.end():]) is not None

    def kill(self) -> None:
        """SIGKILL the worker and every process it started (a crash, not a shutdown)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
