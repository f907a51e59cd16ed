"""A worker that dies is started again: by ``make run``'s supervisor, and by Docker's restart policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.foundation.test_make_run import _wait_for
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_compose_restarts_every_worker_and_the_broker_they_need() -> None:
    services = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    for name in ("worker-cpu", "worker-gpu", "web", "redis", "postgres"):
        assert services[name].get("restart") in ("unless-stopped", "always"), f"{name} is not restarted"


def _worker_pids(serve: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(serve.pid), "-f", "celery -A nasweb worker"],
                           capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.slow
def test_make_run_starts_a_killed_worker_again(tmp_path: Path, free_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update({"NASWEB_VAR_DIR": str(tmp_path / "var"), "NASWEB_PORT": str(free_port), "PYTHONUNBUFFERED": "1",
                "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1", "NASWEB_DEMO": "false"})
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        serve = subprocess.Popen([sys.executable, "-m", "nasweb.serve"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
    try:
        _wait_for(r"local@\S+ ready\.", log_path, serve, 300)
        (first,) = _worker_pids(serve)
        os.kill(first, signal.SIGKILL)
        _wait_for(r"the worker exited with status -9; starting it again", log_path, serve, 30)
        wait_until(lambda: log_path.read_text(errors="replace").count(" ready.") >= 2, 120, interval=0.3,
                   message=lambda: log_path.read_text())
        (second,) = _worker_pids(serve)
        assert second != first and serve.poll() is None

        ping = subprocess.run([sys.executable, "manage.py", "ping_worker", "--timeout", "60"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert ping.returncode == 0, ping.stderr + log_path.read_text()
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if serve.poll() is None:
            serve.kill()
