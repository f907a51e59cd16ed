"""Web benchmark: API latency under a loopback load test, and scheduling overhead per evaluation.

Run from the repository root (PostgreSQL and Redis on this machine)::

    .venv/bin/python -m benchmarks.web.run             # full run, a few minutes; writes benchmarks/results/web.md
    .venv/bin/python -m benchmarks.web.run --quick     # smoke run, under a minute

It creates a fresh PostgreSQL database (``--database``, dropped first), one user, one search space of
15,625 encodings and one search holding 10,000 evaluations (rows written directly), starts a real
gunicorn on 127.0.0.1, and lets ``--clients`` concurrent clients (threads, new connection per request,
bounded in count and time) call, one scenario at a time:

* ``/healthz`` - the baseline: the whole stack, one trivial query and a broker ping;
* the evaluations page (random page of 50, a mix of orderings and filters);
* the progress feed as the live dashboard polls it (cursor near the end), and a catch-up from an
  old cursor (2000 rows, the feed's limit);
* the CSV export of all 10,000 evaluations.

Latencies are measured at the client (connect to last byte). Ratios are against ``/healthz`` p95 in
the same run. Then, if the engine (``nastune.search``) is importable, it runs a tabular search with a
real Celery worker (queues ``search`` and ``gpu``) and measures the scheduling overhead per
evaluation: finish of one evaluation -> start of the next (parallelism 1, no evaluator delay).
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import itertools
import json
import logging
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "web.md"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/nasweb_bench_web"
DEFAULT_BROKER = "redis://127.0.0.1:6379/15"
N_EVALUATIONS = 10_000
N_OPS, N_EDGES = 5, 6  # a NAS-Bench-201-sized space: 5 operations on 6 edges = 15,625 cells
TARGET_PAGED_P95_MS = 150.0
TARGET_CSV_P95_MS = 2000.0
TARGET_SCHEDULING_MS = 250.0

logger = logging.getLogger("benchmarks.web")


# --------------------------------------------------------------------------------------------------
# Environment: a throw-away database, var folder and broker index, set before Django starts
# --------------------------------------------------------------------------------------------------


def prepare_environment(database_url: str, broker_url: str) -> Path:
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"--database must be a postgres:// URL, got {database_url!r}")
    if not broker_url.startswith("redis://"):
        raise SystemExit(f"--broker must be a redis:// URL, got {broker_url!r}")
    var_dir = Path(tempfile.mkdtemp(prefix="nasweb-bench-web-"))
    os.environ.update({
        "DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, "NASWEB_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "nasweb.settings", "DEBUG": "false", "LOG_LEVEL": "WARNING",
        "NASWEB_RECOVERY_INTERVAL_S": "0",
    })
    recreate_database(database_url)
    return var_dir


def recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing database name {name!r}")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def flush_broker(broker_url: str) -> None:
    import redis

    redis.Redis.from_url(broker_url).flushdb()


@contextmanager
def django_on_fresh_database(database_url: str, broker_url: str) -> Iterator[Path]:
    """A recreated, migrated database, a flushed broker database and a temporary var folder (yielded),
    with Django set up on them; the folder and the broker database are cleaned up afterwards."""
    var_dir = prepare_environment(database_url, broker_url)
    flush_broker(broker_url)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield var_dir
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
        flush_broker(broker_url)


def add_environment_arguments(parser: argparse.ArgumentParser, database: str, broker: str) -> None:
    """``--database`` and ``--broker``: what :func:`django_on_fresh_database` recreates and flushes."""
    parser.add_argument("--database", default=os.environ.get("NASWEB_BENCH_DATABASE_URL", database),
                        help="PostgreSQL URL of a database to DROP and recreate (default %(default)s)")
    parser.add_argument("--broker", default=os.environ.get("NASWEB_BENCH_BROKER_URL", broker),
                        help="Redis URL whose database index is flushed (default %(default)s)")


def celery_worker(queues: str, concurrency: int, name: str) -> list[str]:
    """The command of a bare prefork Celery worker on ``queues`` (no gossip, mingle or broker heartbeats)."""
    return [sys.executable, "-m", "celery", "-A", "nasweb", "worker", "--queues", queues, "--pool", "prefork",
            "--concurrency", str(concurrency), "--loglevel", "WARNING", "--hostname", f"{name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]


def publish(text: str, out: Path) -> None:
    """Print a result table and write it to ``out``."""
    sys.stdout.write(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    logger.info("wrote %s", out)


# --------------------------------------------------------------------------------------------------
# Scenery: rows written directly (the API and the selectors read them like any others)
# --------------------------------------------------------------------------------------------------


@dataclass
class Scenery:
    token: str
    space_id: int
    search_id: int
    finished_count: int


def synthetic_encodings() -> list[list[int]]:
    return [list(cell) for cell in itertools.product(range(N_OPS), repeat=N_EDGES)]


def synthetic_value(index: int, fidelity: str) -> float:
    """A deterministic, bumpy accuracy-like value per cell and fidelity."""
    rng = random.Random(index * 2 + (fidelity == "lo"))
    return round(60 + 30 * rng.random() - (5 if fidelity == "lo" else 0), 4)


def build_scenery(n_evaluations: int) -> Scenery:
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from searches.models import Evaluation, SearchInstance
    from spaces.models import SearchSpace
    from spaces.services import _store_profile

    user = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex)
    token = Token.objects.create(user=user)
    encodings = synthetic_encodings()
    n = len(encodings)
    space = SearchSpace(uid=uuid.uuid4(), owner=user, name="bench space", n_encodings=n, encoding_length=N_EDGES,
                        feature_summary=[], module_source="def encoding_to_net(e):\n    return None\n",
                        module_sha256="0" * 64, sample_input_shape=[1, 3, 32, 32], state=SearchSpace.State.READY,
                        progress_done=n, progress_total=n)
    space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings)), save=False)
    counts = np.asarray(encodings)
    params = 1e5 + (counts * 3e4).sum(axis=1).astype(float)
    _store_profile(space, {"params": params, "flops": params * 1e3}, failures={})
    space.save()

    table = "index,hi,lo\n" + "".join(f"{i},{synthetic_value(i, 'hi')},{synthetic_value(i, 'lo')}\n" for i in range(n))
    search = SearchInstance(uid=uuid.uuid4(), owner=user, space=space, name="bench search",
                            evaluator_kind=SearchInstance.EvaluatorKind.TABULAR, budget=n_evaluations,
                            hi_fi_cost=200, lo_fi_cost=12, parallelism=8, state=SearchInstance.State.RUNNING,
                            started_at=timezone.now() - timedelta(days=2))
    search.evaluator_table.save("table.csv", ContentFile(table.encode()), save=False)
    search.save()

    rng = random.Random(0)
    order = rng.sample(range(n), n)
    start = timezone.now() - timedelta(days=2)
    rows, spent, best = [], 0.0, None
    for seq in range(1, n_evaluations + 1):
        index = order[(seq - 1) % n]
        fidelity = "lo" if seq % 3 == 0 else "hi"
        failed = seq % 97 == 0
        value = None if failed else synthetic_value(index, fidelity)
        cost = 0.0 if failed else (1.0 if fidelity == "hi" else 0.06)
        spent += cost
        if fidelity == "hi" and value is not None:
            best = value if best is None else max(best, value)
        duration = 5 + 10 * rng.random()
        finished = start + timedelta(seconds=15 * seq)
        rows.append(Evaluation(
            search=search, encoding_index=index, fidelity=fidelity, attempt=1 + (seq - 1) // n,
            state="failed" if failed else "done", value=value, cost=cost, seq=seq, spent_after=spent,
            best_after=best, started_at=finished - timedelta(seconds=duration), finished_at=finished,
            duration_s=duration, worker="gpu-host-3:1234", gpu=str(seq % 8), predicted_mean=value, predicted_std=1.5,
            log_tail=f"epoch 200/200 loss 0.{seq % 1000:03d} acc {value}\n" * 4,
            error="Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory" if failed else "",
        ))
    for k in range(8):  # in flight
        rows.append(Evaluation(search=search, encoding_index=order[n_evaluations + k], fidelity="hi",
                               state="running", started_at=timezone.now(), worker="gpu-host-3:1234", gpu=str(k),
                               log_tail="epoch 17/200\n"))
    Evaluation.objects.bulk_create(rows, batch_size=2000)
    SearchInstance.objects.filter(id=search.id).update(finished_count=n_evaluations, spent=spent, best_value=best)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return Scenery(token=token.key, space_id=space.id, search_id=search.id, finished_count=n_evaluations)


# --------------------------------------------------------------------------------------------------
# Processes: gunicorn and a Celery worker, both on loopback and the benchmark's database
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def process(command: list[str], log_path: Path, ready: Callable[[], bool],
            timeout: float = 90.0) -> Iterator[subprocess.Popen]:
    log = log_path.open("w")
    child = subprocess.Popen(command, cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerCpu:
    """CPU time spent serving: gunicorn's workers plus the PostgreSQL backends of the benchmark's
    database (not the load generator, not other databases). Unlike latency, it hardly depends on
    what else runs on the machine."""

    def __init__(self, gunicorn_pid: int) -> None:
        self.gunicorn_pid = gunicorn_pid

    def pids(self) -> list[int]:
        from django.db import connection

        children = Path(f"/proc/{self.gunicorn_pid}/task/{self.gunicorn_pid}/children").read_text().split()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            backends = [row[0] for row in cursor.fetchall()]
        return [int(pid) for pid in children] + backends

    def snapshot(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in self.pids()}

    def since(self, before: dict[int, float]) -> float:
        after = self.snapshot()
        return sum(max(0.0, after[pid] - before.get(pid, 0.0)) for pid in after)


def get(port: int, path: str, token: str | None = None, timeout: float = 60.0) -> tuple[int, int]:
    """One GET on a new connection; returns (status, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
        response = connection.getresponse()
        size = 0
        while chunk := response.read(65536):
            size += len(chunk)
        return response.status, size
    finally:
        connection.close()


def answers(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return get(port, "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    return check


# --------------------------------------------------------------------------------------------------
# The load test
# --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    mode: str
    target_ms: float | None
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    bytes: int = 0
    seconds: float = 0.0
    clients: int = 0
    note: str = ""
    server_cpu_s: float | None = None

    @property
    def cpu_ms_per_request(self) -> float | None:
        n = len(self.latencies_ms) + self.errors
        return None if self.server_cpu_s is None or not n else 1000 * self.server_cpu_s / n

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]  # nearest rank


DASHBOARD, SATURATION = "dashboard", "saturation"


def load(name: str, mode: str, port: int, token: str, paths: Callable[[random.Random], str], *, clients: int,
         requests: int, max_seconds: float, target_ms: float | None, seed: int,
         stop: threading.Event | None = None) -> Result:
    """``clients`` threads share ``requests`` requests, stopping at ``max_seconds`` (or when ``stop`` is set).

    ``dashboard``: each client waits 0.5-1.5 s (uniform, seeded) between requests, as the live dashboard
    polls every second. ``saturation``: closed loop, every client sends its next request at once.
    """
    result = Result(name, mode, target_ms, clients=clients)
    remaining = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    stop = stop or threading.Event()

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        if mode == DASHBOARD:
            stop.wait(rng.uniform(0, 1.0))  # clients do not start in lockstep
        while time.monotonic() < deadline and not stop.is_set():
            with lock:
                if next(remaining, None) is None:
                    return
            path = paths(rng)
            started = time.perf_counter()
            try:
                status, size = get(port, path, token)
            except OSError:
                status, size = 0, 0
            elapsed = 1000 * (time.perf_counter() - started)
            with lock:
                if status == 200:
                    result.latencies_ms.append(elapsed)
                    result.bytes += size
                else:
                    result.errors += 1
            if mode == DASHBOARD:
                stop.wait(rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


@contextmanager
def background(port: int, token: str, paths: Callable[[random.Random], str], clients: int) -> Iterator[Result]:
    """``clients`` dashboard clients polling ``paths`` until the block ends."""
    stop = threading.Event()
    box: list[Result] = []
    thread = threading.Thread(target=lambda: box.append(load(
        "background", DASHBOARD, port, token, paths, clients=clients, requests=10**9, max_seconds=3600,
        target_ms=None, seed=99, stop=stop)))
    thread.start()
    time.sleep(1.5)  # let the pollers get going
    placeholder = Result("background", DASHBOARD, None, clients=clients)
    try:
        yield placeholder
    finally:
        stop.set()
        thread.join()
        placeholder.latencies_ms, placeholder.errors, placeholder.seconds = (
            box[0].latencies_ms, box[0].errors, box[0].seconds)


@dataclass
class Scenario:
    name: str
    paths: Callable[[random.Random], str]
    requests: int
    target_ms: float | None
    clients: int | None = None  # None: --clients


def scenarios(scenery: Scenery, quick: bool) -> dict[str, Scenario]:
    search = f"/api/searches/{scenery.search_id}"
    pages = scenery.finished_count // 50
    listings = ["", "&ordering=-value", "&ordering=-finished_at", "&state=done&fidelity=hi&ordering=-value",
                "&value_min=80&ordering=seq"]
    n = 100 if quick else 400
    return {
        "healthz": Scenario("`/healthz` (baseline)", lambda rng: "/healthz", n, None),
        "detail": Scenario("search detail", lambda rng: f"{search}/", n, TARGET_PAGED_P95_MS),
        "page": Scenario(
            "evaluations page (50 of 10,000; mixed orderings and filters)",
            lambda rng: f"{search}/evaluations/?page={rng.randint(1, pages // 4)}&page_size=50{rng.choice(listings)}",
            n, TARGET_PAGED_P95_MS),
        "live": Scenario("progress, live poll (cursor near the end)",
                         lambda rng: f"{search}/progress/?cursor={scenery.finished_count - rng.randint(0, 20)}",
                         n, TARGET_PAGED_P95_MS),
        "catchup": Scenario("progress, catch-up (2,000 rows from an old cursor)",
                            lambda rng: f"{search}/progress/?cursor={rng.randint(0, scenery.finished_count - 2000)}",
                            n // 2, TARGET_PAGED_P95_MS),
        "catchup500": Scenario("progress, catch-up of 500 rows (what a feed limit of 500 would cost)",
                               lambda rng: f"{search}/progress/?cursor={scenery.finished_count - 500}",
                               n // 2, TARGET_PAGED_P95_MS),
        "csv": Scenario("CSV export (10,000 rows)", lambda rng: f"{search}/evaluations.csv", 5 if quick else 10,
                        TARGET_CSV_P95_MS, clients=1),
    }


def run_load_test(port: int, server: ServerCpu, scenery: Scenery, args: argparse.Namespace) -> list[Result]:
    plan = scenarios(scenery, args.quick)
    token, clients = scenery.token, args.clients
    results = []

    def measure(key: str, mode: str, alone: bool = True, **overrides: Any) -> Result:
        scenario = plan[key]
        n_clients = overrides.pop("clients", scenario.clients or clients)
        for _ in range(2 * args.web_workers):  # warm every gunicorn worker up on this path
            get(port, scenario.paths(random.Random(1)), token)
        logger.info("%s: %s, %d clients", mode, scenario.name, n_clients)
        before = server.snapshot()
        result = load(scenario.name, mode, port, token, scenario.paths, clients=n_clients,
                      requests=overrides.pop("requests", scenario.requests), max_seconds=args.max_seconds,
                      target_ms=scenario.target_ms, seed=args.seed)
        if alone and mode == SATURATION:  # a paced scenario would also count the servers' idle time
            result.server_cpu_s = server.since(before)
        return result

    for key in ("healthz", "detail", "page", "live", "catchup", "catchup500"):
        results.append(measure(key, DASHBOARD))
    with background(port, token, plan["live"].paths, clients - 1) as pollers:
        csv_result = measure("csv", DASHBOARD, alone=False)
    csv_result.clients = clients
    csv_result.note = (f"1 client exporting while {clients - 1} dashboards poll progress (their p95: "
                       f"{pollers.percentile(95):.0f} ms over {len(pollers.latencies_ms)} polls)")
    results.append(csv_result)
    for key in ("healthz", "page", "live", "catchup"):
        results.append(measure(key, SATURATION))
    results.append(measure("csv", SATURATION, clients=clients, requests=clients if args.quick else 2 * clients))
    return results


# --------------------------------------------------------------------------------------------------
# Scheduling overhead: finish of one evaluation -> start of the next, with a real worker
# --------------------------------------------------------------------------------------------------


@dataclass
class Gap:
    """finish of evaluation k-1 -> start of evaluation k, split at the row's creation."""

    number: int  # k, in order of creation
    total_ms: float
    step_ms: float
    dispatch_ms: float


@dataclass
class Scheduling:
    pending_reason: str = ""
    n: int = 0
    n_initial: int = 0
    gaps: list[Gap] = field(default_factory=list)
    search_state: str = ""
    failure_reason: str = ""
    space_size: int = 0


def pretrained_space(owner: Any, name: str, encodings: list[list[int]]) -> Any:
    """A ready space of ``owner`` as the profiling and pretraining tasks leave it: a params/FLOPs profile
    (a closed form of the encoding) and a bundle with the pretrained surrogate."""
    import numpy as np
    from django.core.files.base import ContentFile

    from spaces import engine
    from spaces.models import SearchSpace
    from spaces.services import _store_profile

    params = 1e5 + (np.asarray(encodings) * 3e4).sum(axis=1).astype(float)
    profile = {"params": params, "flops": params * 1e3}
    space = SearchSpace(uid=uuid.uuid4(), owner=owner, name=name, n_encodings=len(encodings),
                        encoding_length=len(encodings[0]), feature_summary=[], sample_input_shape=[1, 3, 32, 32],
                        state=SearchSpace.State.PRETRAINING, progress_done=len(encodings),
                        progress_total=len(encodings))
    space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings)), save=False)
    _store_profile(space, profile, failures={})
    space.save()
    bundle = engine.pretrain_and_bundle(space, encodings, profile, {})
    with bundle.open("rb") as handle:
        space.bundle_file.save("space.nastune", ContentFile(handle.read()), save=False)
    space.state = SearchSpace.State.READY
    space.save()
    return space


def scheduling_overhead(var_dir: Path, n_evaluations: int, space_size: int) -> Scheduling:
    if not hasattr(importlib.import_module("nastune"), "SearchInstance"):
        return Scheduling(pending_reason="the engine's ask/tell (`nastune/search.py`) is not in the repository yet")
    from django.contrib.auth import get_user_model

    from searches import services as search_services
    from searches.models import SearchInstance
    from searches.spec import SearchSpec

    user = get_user_model().objects.get(username="bench")
    encodings = synthetic_encodings()[:space_size]
    space = pretrained_space(user, "scheduling space", encodings)

    table = "index,hi\n" + "".join(f"{i},{synthetic_value(i, 'hi')}\n" for i in range(len(encodings)))
    search = search_services.search_create(
        owner=user, space=space, spec=SearchSpec(name="scheduling", evaluator_kind="tabular", budget=n_evaluations,
                                                 evaluator_table=table.encode(), parallelism=1, seed=0))
    worker = celery_worker("search,gpu", 2, "bench")
    deadline = time.monotonic() + 60 + 20 * n_evaluations
    with process(worker, var_dir / "worker.log", ready=lambda: True):
        while time.monotonic() < deadline:
            search.refresh_from_db()
            if search.state not in SearchInstance.ACTIVE_STATES:
                break
            time.sleep(0.5)
    search.refresh_from_db()
    result = Scheduling(search_state=search.state, failure_reason=search.failure_reason, space_size=len(encodings))
    if search.state != SearchInstance.State.FINISHED:
        logger.warning("scheduling search ended %s: %s\nworker log tail:\n%s", search.state, search.failure_reason,
                       (var_dir / "worker.log").read_text()[-3000:])
    rows = list(search.evaluations.order_by("id").values("queued_at", "started_at", "finished_at"))
    for number, (previous, following) in enumerate(itertools.pairwise(rows), start=2):
        if not (previous["finished_at"] and following["started_at"]):
            continue
        result.gaps.append(Gap(
            number=number,
            total_ms=1000 * (following["started_at"] - previous["finished_at"]).total_seconds(),
            step_ms=1000 * (following["queued_at"] - previous["finished_at"]).total_seconds(),
            dispatch_ms=1000 * (following["started_at"] - following["queued_at"]).total_seconds(),
        ))
    result.n = len(rows)
    from searches.storage import N_INITIAL

    result.n_initial = N_INITIAL
    return result


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return "baseline"
    return "meets" if value <= target else "**misses**"


def load_table(results: list[Result], mode: str) -> list[str]:
    rows = [r for r in results if r.mode == mode]
    if not rows:
        return ["(not run: --skip-load)"]
    baseline = rows[0].percentile(95)
    lines = ["| scenario | clients | requests | errors | p50 ms | p95 ms | max ms | p95 / healthz p95 | req/s | "
             "server CPU ms / req | target p95 | |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in rows:
        p95 = result.percentile(95)
        lines.append(
            f"| {result.name} | {result.clients} | {len(result.latencies_ms)} | {result.errors} | "
            f"{result.percentile(50):.0f} | {p95:.0f} | {max(result.latencies_ms, default=float('nan')):.0f} | "
            f"{p95 / baseline:.1f} | {result.throughput:.1f} | "
            f"{'-' if result.cpu_ms_per_request is None else f'{result.cpu_ms_per_request:.1f}'} | "
            f"{'-' if result.target_ms is None else f'{result.target_ms:.0f} ms'} | {verdict(p95, result.target_ms)} |")
    notes = [f"* {result.name}: {result.note}" for result in rows if result.note]
    return [*lines, *(["", *notes] if notes else [])]


def report(results: list[Result], scheduling: Scheduling, args: argparse.Namespace, started: datetime,
           load_average: tuple[float, float, float]) -> str:
    lines = [
        "# Web benchmark: API latency and scheduling overhead",
        "",
        f"Generated by `benchmarks/web/run.py`{' --quick' if args.quick else ''} on {started:%Y-%m-%d %H:%M} UTC.",
        "",
        f"* Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"at the start {load_average[0]:.2f}, {load_average[1]:.2f}, {load_average[2]:.2f}. The load generator, "
        "gunicorn, PostgreSQL and Redis all share these cores.",
        f"* gunicorn with {args.web_workers} sync workers on 127.0.0.1; PostgreSQL and Redis on this machine; the "
        "evaluation table vacuumed and analysed after loading, as autovacuum keeps it in service.",
        f"* One search holding {N_EVALUATIONS:,} evaluations (rows written directly) over a space of "
        f"{N_OPS ** N_EDGES:,} encodings; every request authenticates with a token.",
        "* Clients are threads opening a new connection per request; latency is measured from connect to last byte; "
        "every scenario is bounded in requests and in time. Ratios are against `/healthz` p95 measured the same "
        "way in the same run (the whole stack with one trivial query and a broker ping).",
        "* Server CPU ms / req (saturation runs): CPU time of gunicorn's workers and of the benchmark database's "
        "PostgreSQL backends during the scenario, per request: the service time, which depends much less on "
        "other load than latency does. With 2 dedicated cores, the dashboard load of 20 clients at ~1 request/s "
        "uses 20 x (CPU ms / req) / 2000 of the machine.",
        "",
        f"## {args.clients} clients polling like the live dashboard (one request every 0.5-1.5 s each)",
        "",
        "This is the targets' load: 20 people with a dashboard open.",
        "",
        *load_table(results, DASHBOARD),
        "",
        f"## Saturation: {args.clients} clients in a closed loop (no pause between requests)",
        "",
        "Every client sends its next request as soon as the last one returns, so the server is always "
        f"{args.clients} requests deep and p95 is mostly queueing: p95 ~ clients / throughput. This measures "
        "capacity (req/s), not what a user waits for.",
        "",
        *load_table(results, SATURATION),
        "",
        "## Scheduling overhead per evaluation",
        "",
    ]
    if scheduling.pending_reason:
        lines.append(f"Pending: {scheduling.pending_reason}. The benchmark code is in place "
                     "(`scheduling_overhead` in `benchmarks/web/run.py`) and runs as soon as it is importable.")
    elif not scheduling.gaps:
        lines.append(f"No gap measured: the search ended `{scheduling.search_state}` after {scheduling.n} "
                     f"evaluations ({scheduling.failure_reason or 'no reason recorded'}).")
    else:
        initial = [gap for gap in scheduling.gaps if gap.number <= scheduling.n_initial]
        model = [gap for gap in scheduling.gaps if gap.number > scheduling.n_initial]
        lines += [
            f"A tabular search (no evaluator delay, parallelism 1) over {scheduling.space_size:,} encodings with "
            f"one Celery worker (prefork, 2 processes, queues `search` and `gpu`) on Redis: {scheduling.n} "
            f"evaluations, search `{scheduling.search_state}`. Gap = next evaluation's `started_at` minus the "
            "previous one's `finished_at`. It splits into the search step (commit, enqueue, the `search` task: "
            "lock the search, rebuild the engine from its stored state, tell, ask, store the state, create the "
            "next row) and dispatch (row committed -> message -> claimed by the `gpu` task). The engine's first "
            f"{scheduling.n_initial} proposals are its initial design (no model); after that every ask fine-tunes "
            "the surrogate on all observations and scores every candidate.",
            "",
            "| gaps | n | median ms | p95 ms | mean ms | step median ms | dispatch median ms | target (mean) | |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for label, group in (("initial design (scheduling only)", initial), ("BO steps (fine-tune + acquisition)",
                                                                              model), ("all", scheduling.gaps)):
            if not group:
                continue
            totals = [gap.total_ms for gap in group]
            lines.append(
                f"| {label} | {len(group)} | {statistics.median(totals):.0f} | {percentile(totals, 95):.0f} | "
                f"{statistics.fmean(totals):.0f} | {statistics.median(gap.step_ms for gap in group):.0f} | "
                f"{statistics.median(gap.dispatch_ms for gap in group):.0f} | {TARGET_SCHEDULING_MS:.0f} ms | "
                f"{verdict(statistics.fmean(totals), TARGET_SCHEDULING_MS)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_environment_arguments(parser, DEFAULT_DATABASE, DEFAULT_BROKER)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="time limit of each scenario")
    parser.add_argument("--scheduling-evaluations", type=int, default=None,
                        help="evaluations of the scheduling search (default 30, --quick 14)")
    parser.add_argument("--scheduling-space", type=int, default=N_OPS ** N_EDGES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="only the scheduling measurement")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = datetime.now(UTC)
    load_average = os.getloadavg()

    with django_on_fresh_database(args.database, args.broker) as var_dir:
        logger.info("writing %d evaluations", N_EVALUATIONS)
        scenery = build_scenery(N_EVALUATIONS)
        port = free_port()
        gunicorn = [sys.executable, "-m", "gunicorn", "nasweb.wsgi:application", "--bind", f"127.0.0.1:{port}",
                    "--workers", str(args.web_workers), "--timeout", "120", "--log-level", "warning"]
        results = []
        if not args.skip_load:
            with process(gunicorn, var_dir / "gunicorn.log", ready=answers(port)) as web:
                results = run_load_test(port, ServerCpu(web.pid), scenery, args)
        logger.info("scheduling overhead")
        scheduling = scheduling_overhead(var_dir, args.scheduling_evaluations or (14 if args.quick else 30),
                                         args.scheduling_space)
        publish(report(results, scheduling, args, started, load_average), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
