"""``make run``'s supervisor: serves the login page and the dashboard, runs a worker, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(pattern: str, log: Path, process: subprocess.Popen, timeout: float) -> re.Match:
    def seen() -> re.Match | None:
        match = re.search(pattern, log.read_text(errors="replace"))
        assert match or process.poll() is None, f"serve exited early:\n{log.read_text()}"
        return match

    return wait_until(seen, timeout, interval=0.3, message=lambda: f"{pattern!r} not seen:\n{log.read_text()}")


def test_serve_runs_web_and_worker_and_stops_cleanly_on_ctrl_c(tmp_path: Path, free_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update({"NASWEB_VAR_DIR": str(tmp_path / "var"), "NASWEB_PORT": str(free_port), "PYTHONUNBUFFERED": "1",
                "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "1", "NASWEB_DEMO": "false"})
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        serve = subprocess.Popen([sys.executable, "-m", "nasweb.serve"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
    try:
        credentials = _wait_for(r"Demo user: (\S+)  password: (\S+)", log_path, serve, 300)
        url = _wait_for(r"running at (http://\S+/)", log_path, serve, 120).group(1)
        assert url == f"http://127.0.0.1:{free_port}/"

        session = requests.Session()

        def login_page_answers() -> tuple[requests.Response] | None:
            try:  # in a tuple: a Response of 4xx/5xx is falsy, and must fail below, not be waited on
                return (session.get(url + "accounts/login/", timeout=5),)
            except requests.ConnectionError:
                return None

        (login_page,) = wait_until(login_page_answers, 60, interval=0.3, message=lambda: log_path.read_text())
        assert login_page.status_code == 200
        css = session.get(url + "static/frontend/nasweb.css", timeout=5)
        assert css.status_code == 200 and "NASWeb dashboard styles" in css.text  # whitenoise serves static files
        response = session.post(
            url + "accounts/login/",
            data={"username": credentials.group(1), "password": credentials.group(2),
                  "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": url}, timeout=10,
        )
        assert response.status_code == 200 and "Your searches" in response.text
        assert session.get(url + "healthz", timeout=10).json()["ok"] is True

        ping = subprocess.run([sys.executable, "manage.py", "ping_worker", "--timeout", "120"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
        assert ping.returncode == 0, ping.stderr + log_path.read_text()

        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0, log_path.read_text()
        assert "NASWeb stopped." in log_path.read_text()
        children = subprocess.run(["pgrep", "-f", f"127.0.0.1:{free_port}"], capture_output=True, text=True)
        assert children.stdout.strip() == "", "gunicorn outlived the supervisor"
    finally:
        if serve.poll() is None:
            serve.kill()


def test_second_serve_on_a_busy_port_says_so(tmp_path: Path, free_port: int) -> None:
    import socket

    env = {**os.environ, "NASWEB_VAR_DIR": str(tmp_path / "var"), "NASWEB_PORT": str(free_port)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port))
        busy.listen()
        result = subprocess.run([sys.executable, "-m", "nasweb.serve"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2
    assert f"127.0.0.1:{free_port} is already in use" in result.stderr
