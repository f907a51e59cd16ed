"""Many users at once: how fairly the workers are shared, and what scheduling costs per evaluation.

Run from the repository root (PostgreSQL and Redis on this machine)::

    .venv/bin/python -m benchmarks.web.many_users            # ~5 minutes; writes benchmarks/results/many_users.md
    .venv/bin/python -m benchmarks.web.many_users --quick    # smoke run

It drops and recreates the database of ``--database`` and flushes the Redis database of ``--broker``.
Five users each own a pretrained space (625 encodings) and start one tabular search (cheap evaluations:
``--delay`` seconds each, hi fidelity only, budget ``--budget``). User 1 is greedy (parallelism 8), users
2-5 ask for 2 each. Real Celery workers run them: one ``gpu`` worker with ``--slots`` processes and one
``search`` worker, as a small deployment would. Three scenarios, in the same run:

* **alone**: user 2 by itself (the baseline for what one user gets);
* **5 users, fair share** (``NASWEB_FAIR_SHARE=true``, the default);
* **5 users, first come first served** (``NASWEB_FAIR_SHARE=false``: the behaviour before fair share).

Figures (from the evaluations' own timestamps):

* *overhead / evaluation*: worker-slot time not spent evaluating, per evaluation:
  ``(slots x makespan - sum of evaluation durations) / evaluations``;
* *contention window*: from the moment every search has started an evaluation to the moment the first
  search starts its last one; *spread* = most / fewest evaluations started by one user in it (1.0 = equal
  shares), with Jain's index;
* *finish spread*: the latest / earliest time a user's search took to end;
* *light rate*: evaluations per minute of a light user (users 2-5), against the same figure alone.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.web.run import (
    REPO,
    add_environment_arguments,
    celery_worker,
    django_on_fresh_database,
    flush_broker,
    pretrained_space,
    process,
    publish,
    synthetic_value,
)

DEFAULT_OUT = REPO / "benchmarks" / "results" / "many_users.md"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/nasweb_bench_users"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
N_USERS = 5
GREEDY_PARALLELISM = 8
LIGHT_PARALLELISM = 2
N_OPS, N_POSITIONS = 5, 4  # 625 encodings: the engine's step stays quick, so scheduling shows

logger = logging.getLogger("benchmarks.many_users")


@dataclass
class Row:
    user: int
    queued: float
    started: float
    finished: float


@dataclass
class Scenario:
    name: str
    users: list[int]
    fair: bool
    rows: list[Row] = field(default_factory=list)
    states: dict[int, str] = field(default_factory=dict)
    ended_after_s: dict[int, float] = field(default_factory=dict)


def encodings() -> list[list[int]]:
    return [list(cell) for cell in itertools.product(range(N_OPS), repeat=N_POSITIONS)]


def make_spaces() -> dict[int, Any]:
    """One user and one pretrained, ready space each (as the profiling and pretraining tasks leave them)."""
    from django.contrib.auth import get_user_model

    spaces = {}
    for user_number in range(1, N_USERS + 1):
        user = get_user_model().objects.create_user(f"user{user_number}", password=uuid.uuid4().hex)
        spaces[user_number] = pretrained_space(user, f"space of user {user_number}", encodings())
    return spaces


def run_scenario(scenario: Scenario, spaces: dict[int, Any], args: argparse.Namespace, var_dir: Path) -> None:
    from searches import services as search_services
    from searches.models import Evaluation, SearchInstance
    from searches.spec import SearchSpec

    flush_broker(args.broker)
    table = "index,hi\n" + "".join(f"{i},{synthetic_value(i, 'hi')}\n" for i in range(len(encodings())))
    searches = {}
    for user_number in scenario.users:
        space = spaces[user_number]
        searches[user_number] = search_services.search_create(owner=space.owner, space=space, spec=SearchSpec(
            name=f"{scenario.name} user {user_number}", evaluator_kind="tabular", budget=args.budget,
            evaluator_table=table.encode(), evaluator_config={"delay_s": args.delay}, seed=user_number,
            parallelism=GREEDY_PARALLELISM if user_number == 1 else LIGHT_PARALLELISM))
    os.environ["NASWEB_FAIR_SHARE"] = "true" if scenario.fair else "false"
    gpu = celery_worker("gpu", args.slots, "gpu")
    step = celery_worker("search", 1, "search")
    started = time.monotonic()
    deadline = started + 120 + 5 * args.budget * len(scenario.users) * max(args.delay, 0.2)
    with process(step, var_dir / f"{scenario.name}-search.log", ready=lambda: True), \
            process(gpu, var_dir / f"{scenario.name}-gpu.log", ready=lambda: True):
        while time.monotonic() < deadline:
            states = dict(SearchInstance.objects.filter(id__in=[s.id for s in searches.values()])
                          .values_list("id", "state"))
            if all(state not in SearchInstance.ACTIVE_STATES for state in states.values()):
                break
            time.sleep(0.5)
    for user_number, search in searches.items():
        search.refresh_from_db()
        scenario.states[user_number] = search.state
        if search.state != SearchInstance.State.FINISHED:
            logger.warning("%s: search of user %d ended %s: %s", scenario.name, user_number, search.state,
                           search.failure_reason)
        rows = search.evaluations.filter(state=Evaluation.State.DONE).values_list("queued_at", "started_at",
                                                                                  "finished_at")
        scenario.rows += [Row(user_number, q.timestamp(), s.timestamp(), f.timestamp()) for q, s, f in rows]
        if search.ended_at and search.created_at:
            scenario.ended_after_s[user_number] = (search.ended_at - search.created_at).total_seconds()


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def overhead_ms(scenario: Scenario, slots: int) -> float:
    first = min(row.started for row in scenario.rows)
    last = max(row.finished for row in scenario.rows)
    busy = sum(row.finished - row.started for row in scenario.rows)
    return 1000 * (slots * (last - first) - busy) / len(scenario.rows)


def window(scenario: Scenario) -> tuple[float, float]:
    """Every search has started its first evaluation .. the first search has started its last one."""
    by_user = {user: sorted(row.started for row in scenario.rows if row.user == user) for user in scenario.users}
    return max(starts[0] for starts in by_user.values()), min(starts[-1] for starts in by_user.values())


def starts_in_window(scenario: Scenario, low: float, high: float) -> dict[int, int]:
    return {user: sum(1 for row in scenario.rows if row.user == user and low <= row.started <= high)
            for user in scenario.users}


def jain(values: list[int]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if any(values) else float("nan")


def light_rate_per_min(scenario: Scenario) -> float:
    """Median over the light users (2-5) of their evaluations per minute, first start to last finish."""
    rates = []
    for user in scenario.users:
        rows = [row for row in scenario.rows if row.user == user]
        if user == 1 or len(rows) < 2:
            continue
        span = max(row.finished for row in rows) - min(row.started for row in rows)
        rates.append(60 * len(rows) / span)
    return statistics.median(rates) if rates else float("nan")


def report(scenarios: list[Scenario], args: argparse.Namespace, started: datetime,
           load_average: tuple[float, float, float]) -> str:
    alone = scenarios[0]
    lines = [
        "# Many users at once: fair share of the workers",
        "",
        f"Generated by `benchmarks/web/many_users.py`{' --quick' if args.quick else ''} on {started:%Y-%m-%d %H:%M} "
        "UTC.",
        "",
        f"* Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"at the start {load_average[0]:.2f}, {load_average[1]:.2f}, {load_average[2]:.2f}. Workers, PostgreSQL and "
        "Redis share these cores.",
        f"* {N_USERS} users, each with a pretrained space of {len(encodings())} encodings and one tabular search "
        f"(every evaluation waits {args.delay:g} s, hi fidelity only, budget {args.budget:g}). User 1 asks for "
        f"parallelism {GREEDY_PARALLELISM}, users 2-{N_USERS} for {LIGHT_PARALLELISM}. One `gpu` worker with "
        f"{args.slots} processes, one `search` worker with 1; Redis broker. All searches are created before the "
        "workers start, so they compete from the first second.",
        "* *Overhead / evaluation*: worker-slot time not spent evaluating, per evaluation. *Window*: from the moment "
        "every search has started an evaluation to the moment the first search started its last one; *spread*: "
        "most / fewest evaluations one user started in it (1.00 = equal shares); Jain's index (1.00 = equal). "
        "*Finished after*: from the search's creation to its end. *Finish spread*: the slowest user's time to "
        "the end of its search / the fastest user's. *Light rate*: evaluations per minute of one of users 2-5 "
        "(median), first start to last finish. Ratios are against *alone* (user 2 by itself) in the same run.",
        "",
        "| scenario | evaluations | makespan s | overhead / evaluation ms | vs alone | starts in window per user "
        "(1..5) | spread | Jain | user 1 finished after s | users 2-5 finished after s (median) | finish spread | "
        "light rate / min | vs alone | states |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base_overhead = overhead_ms(alone, args.slots)
    base_rate = light_rate_per_min(alone)
    for scenario in scenarios:
        rows = scenario.rows
        makespan = max(r.finished for r in rows) - min(r.started for r in rows)
        overhead = overhead_ms(scenario, args.slots)
        rate = light_rate_per_min(scenario)
        ended = scenario.ended_after_s
        greedy_end = f"{ended[1]:.1f}" if 1 in ended else "-"
        light_ends = [ended[user] for user in scenario.users if user != 1 and user in ended]
        light_end = f"{statistics.median(light_ends):.1f}" if light_ends else "-"
        ends = list(ended.values())
        finish = f"{max(ends) / min(ends):.2f}" if len(scenario.users) > 1 and len(ends) == len(scenario.users) \
            else "-"
        low, high = window(scenario) if len(scenario.users) > 1 else (0.0, -1.0)
        if low < high:
            counts = starts_in_window(scenario, low, high)
            values = [counts[user] for user in scenario.users]
            share = " / ".join(str(v) for v in values)
            spread = f"{max(values) / max(min(values), 1):.2f}"
            fairness = f"{jain(values):.2f}"
        else:  # one user, or a search ended before the last one started: no window where all compete
            share, spread, fairness = "-", "-", "-"
        states = ", ".join(sorted(set(scenario.states.values())))
        lines.append(
            f"| {scenario.name} | {len(rows)} | {makespan:.1f} | {overhead:.0f} | {overhead / base_overhead:.2f} | "
            f"{share} | {spread} | {fairness} | {greedy_end} | {light_end} | {finish} | {rate:.1f} | "
            f"{rate / base_rate:.2f} | {states} |")
    lines += [
        "",
        "What to read: with first come first served the greedy user's eight evaluations queue in front of "
        "everybody's, so it finishes first and the light users start far fewer evaluations in the window and "
        "finish much later; with fair share each free worker goes to the user with the fewest running "
        "evaluations (ties: served longest ago), so the shares are close to equal however much each user asks "
        "for, and everybody finishes at about the same time. With five users on two worker slots a light user "
        "gets a fraction of its rate alone (light rate; alone, its steps leave the slots idle part of the "
        "time). The overhead per evaluation is what the "
        "`search` steps and the dispatch cost a worker slot; five searches keep the slots busier than one "
        "search alone does, so it falls.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_environment_arguments(parser, DEFAULT_DATABASE, DEFAULT_BROKER)
    parser.add_argument("--budget", type=float, default=None, help="evaluations per search (default 16, --quick 8)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each evaluation takes")
    parser.add_argument("--slots", type=int, default=2, help="processes of the gpu worker")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.budget = args.budget or (8 if args.quick else 16)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = datetime.now(UTC)
    load_average = os.getloadavg()
    with django_on_fresh_database(args.database, args.broker) as var_dir:
        logger.info("pretraining %d spaces", N_USERS)
        spaces = make_spaces()
        everyone = list(range(1, N_USERS + 1))
        scenarios = [Scenario("alone (user 2)", [2], fair=True), Scenario("5 users, fair share", everyone, True),
                     Scenario("5 users, first come first served", everyone, False)]
        for scenario in scenarios:
            logger.info("scenario %s", scenario.name)
            run_scenario(scenario, spaces, args, var_dir)
        publish(report(scenarios, args, started, load_average), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
