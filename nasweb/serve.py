"""``make run``: prepare the database and static files, then run the web server and one worker.

Runs gunicorn (with whitenoise serving static files) and one Celery worker consuming every
queue, prints the URL, and stops both cleanly on Ctrl-C or SIGTERM. A worker that dies is
started again (its lost work is picked up by the watchdog, nasweb.recovery); one that dies
``MAX_RESTARTS`` times within ``RESTART_WINDOW_S`` is broken, not unlucky, and stops NASWeb with a
non-zero status, as does the web server dying.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_PR_SET_PDEATHSIG = 1
#: a worker that dies this often within RESTART_WINDOW_S seconds is not restarted again
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def _die_with_parent() -> None:
    """Children get SIGTERM if this supervisor is killed, so nothing is left running."""
    with contextlib.suppress(OSError):  # not Linux: children then rely on terminate() below
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


def control_socket_args(port: int) -> list[str]:
    """Gunicorn's control-socket option for this server: its own socket per port under the var folder, so two
    ``make run`` on one machine do not share gunicorn's default ``~/.gunicorn/gunicorn.ctl``; off where that
    path would exceed the length of a Unix socket address."""
    var_dir = Path(os.environ.get("NASWEB_VAR_DIR") or ROOT / "var")
    path = var_dir.resolve() / "run" / f"gunicorn-{port}.ctl"
    if len(str(path).encode()) > 100:
        return ["--no-control-socket"]
    path.parent.mkdir(parents=True, exist_ok=True)
    return ["--control-socket", str(path)]


def _manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nasweb.settings")
    host = os.environ.get("NASWEB_HOST", "127.0.0.1")
    port_text = os.environ.get("NASWEB_PORT", "8000")
    if not port_text.isdigit():
        sys.stderr.write(f"NASWEB_PORT={port_text!r} is not a port number\n")
        return 2
    port = int(port_text)
    if not _port_free(host, port):
        sys.stderr.write(f"{host}:{port} is already in use; stop what runs there or set NASWEB_PORT=<free port>\n")
        return 2

    _manage("migrate", "--noinput", "-v", "0")
    _manage("collectstatic", "--noinput", "-v", "0")
    demo = os.environ.get("NASWEB_DEMO", "true").strip().lower() not in ("0", "false", "no", "off")
    _manage("setup_demo", *([] if demo else ["--no-data"]))

    workers = os.environ.get("WEB_CONCURRENCY", "2")
    web = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "nasweb.wsgi:application", "--bind", f"{host}:{port}",
         "--workers", workers, "--timeout", "120", "--access-logfile", "-", "--graceful-timeout", "10",
         *control_socket_args(port)],
        cwd=ROOT, preexec_fn=_die_with_parent,
    )
    def start_worker() -> subprocess.Popen:
        return subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "nasweb", "worker", "--queues", "profile,pretrain,search,gpu",
             "--concurrency", os.environ.get("WORKER_CONCURRENCY", "2"), "--loglevel", "INFO",
             "--hostname", f"local@{socket.gethostname()}"],
            cwd=ROOT, preexec_fn=_die_with_parent,
        )

    children = {"web server": web, "worker": start_worker()}
    worker_deaths: list[float] = []
    shown_host = f"[{host}]" if ":" in host else host
    print(f"\nNASWeb is running at http://{shown_host}:{port}/  (Ctrl-C stops it)\n", flush=True)

    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is None or stopping:
                continue
            if name == "worker":
                now = time.monotonic()
                worker_deaths[:] = [t for t in worker_deaths if now - t < RESTART_WINDOW_S] + [now]
            if name == "worker" and len(worker_deaths) <= MAX_RESTARTS:
                sys.stderr.write(f"the worker exited with status {child.returncode}; starting it again\n")
                children["worker"] = start_worker()
                continue
            sys.stderr.write(f"the {name} exited with status {child.returncode}; stopping NASWeb\n")
            exit_code = 1
            stopping = True
        time.sleep(0.2)

    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("NASWeb stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
