"""Redis killed three times mid-search: the worker lives on and the search finishes with no manual action.

The test runs its own ``redis-server`` on a free port, so killing it disturbs no other test or engineer;
the test process and the worker both use it as their broker.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from searches.models import Evaluation, SearchInstance
from tests.support.waiting import wait_until
from tests.web.test_search_flow import assert_every_evaluation_counted_once, create_search

pytestmark = [pytest.mark.slow, pytest.mark.redis]

KILLS = 3
DOWN_S = 2.0


class PrivateRedis:
    """A ``redis-server`` without persistence (like the CI one) that this test may kill and restart."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start the server; returns the monotonic time at which it answered."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
        )
        wait_until(self.answers, 20, interval=0.05, message="the test's redis-server did not answer")
        return time.monotonic()

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: the broker vanishes with every message it held, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def private_redis(free_port: int, tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def broker_of_this_process(url: str) -> Iterator[None]:
    """Send this process's tasks (search creation, steering) through ``url`` too."""
    from nasweb.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options

    def reset_pools() -> None:
        # the app caches the pools of its broker URL (kombu keeps one per URL): forget them, and the
        # next send looks up the pools of the URL configured now
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url, app.conf.broker_transport_options = url, {"visibility_timeout": 3600}
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url, app.conf.broker_transport_options = saved


def test_three_redis_kills_mid_search_need_no_manual_action(private_redis, ready_space, start_worker, users) -> None:
    # The worker exactly as `make run` starts it (prefork pool, gossip, mingle, heartbeats), with the
    # default recovery settings.
    worker = start_worker(name="survivor", pool="prefork", concurrency=2, bare=False,
                          extra_env={"CELERY_BROKER_URL": private_redis.url})
    with broker_of_this_process(private_redis.url):
        search = create_search(ready_space, users["owner"], delay=1.5, budget=9, parallelism=2)
        answered_again = 0.0
        for kill in range(1, KILLS + 1):
            # each kill hits evaluations in flight
            wait_until(lambda k=kill: search.evaluations.filter(state=Evaluation.State.DONE).count() >= 2 * k and
                       search.evaluations.filter(state=Evaluation.State.RUNNING).exists(), 120,
                       interval=0.1, message=worker.log)
            private_redis.kill()
            time.sleep(DOWN_S)
            answered_again = private_redis.start()
            assert worker.process.poll() is None, f"the worker exited after Redis kill {kill}:\n{worker.log()[-4000:]}"

        def ended() -> bool:
            search.refresh_from_db()
            return search.state not in SearchInstance.ACTIVE_STATES

        wait_until(ended, 60, interval=0.3, message=lambda: f"search {search.state} 60 s after Redis came back:\n"
                   f"{dict(search.evaluations.values_list('id', 'state'))}\n{worker.log()[-3000:]}")
        finished_after = time.monotonic() - answered_again
    assert search.state == "finished", search.failure_reason
    assert worker.process.poll() is None, worker.log()[-4000:]
    assert "Unrecoverable error" not in worker.log()
    assert_every_evaluation_counted_once(search)
    assert search.evaluations.filter(state=Evaluation.State.DONE, fidelity="hi").count() >= 8
    print(f"search finished {finished_after:.1f} s after Redis answered again")
