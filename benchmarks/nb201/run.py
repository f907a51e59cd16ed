"""NAS-Bench-201 benchmark of issue 5: every method, three datasets, seeds 0-29, budget 300.

Run (about 1 hour on 2 cores after the proxies, about 35 minutes once; see ``benchmarks/nb201/README.md``)::

    python -m benchmarks.nb201.proxies          # once: training-free proxies of all 15,625 networks
    python -m benchmarks.nb201.run --jobs 2     # prints the table, writes benchmarks/results/nb201.md + .png

Each run is cached as ``var/nb201/results/<method>/<dataset>-<seed>.json`` (``--fresh`` discards them), so an
interrupted benchmark continues where it stopped. ``--only-report`` rebuilds the report from the cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nb201 import common
from benchmarks.nb201.common import BUDGET, CHECKPOINTS, DATASET_LABEL, DATASETS, METHODS, VAR

RESULTS = VAR / "results"
REPORTS = common.ROOT / "benchmarks" / "results"

#: issue 5's targets: median evaluations to the optimum per dataset
TARGET_MEDIAN = {"cifar10": 30, "cifar100": 15, "imagenet16": 100}
TARGET_P90_RATIO = 2.5
#: issue 13: the headline row, what it must beat, and the transfer targets
HEADLINE = "user"
BASELINE_ROWS = ("random", "evolution", "local_search", "tpe", "descending_params")
TARGET_TRANSFER = {"cifar100": 10, "imagenet16": 50}
#: rows run by default (issue 13): user-level rows, baselines, the hand-feature row of issue 5
DEFAULT_METHODS = ("user", "user-ensemble", "user-nopretrain", "user-encoding", "user-transfer", "nastune",
                   *BASELINE_ROWS)


def result_path(method: str, dataset: str, seed: int) -> Path:
    return RESULTS / method / f"{dataset}-{seed}.json"


def _job(args: tuple[str, str, int, int]) -> tuple[str, str, int, float]:
    method, dataset, seed, budget = args
    path = result_path(method, dataset, seed)
    if path.exists():  # another process (or an earlier pass) did it meanwhile
        return method, dataset, seed, 0.0
    result = common.run_one(method, dataset, seed, budget)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)
    return method, dataset, seed, result["wall_s"]


def load_results(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int]) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for m in methods:
        for d in datasets:
            rows = []
            for s in seeds:
                p = result_path(m, d, s)
                if p.exists():
                    rows.append(json.loads(p.read_text()))
            out[(m, d)] = rows
    return out


# -- statistics -------------------------------------------------------------------------------------------


def steps_to_optimum(rows: list[dict[str, Any]], budget: int) -> np.ndarray:
    """Evaluations (budget units) to the optimum per seed; ``inf`` when not found within the budget."""
    return np.array([r["to_optimum"] if r["found"] else math.inf for r in rows], dtype=np.float64)


def censored_quantile(x: np.ndarray, q: float) -> float:
    """Quantile with censored runs (``inf``) ranked last (lower-interpolated so ``inf`` never mixes)."""
    if len(x) == 0:
        return math.nan
    return float(np.quantile(np.sort(x), q, method="lower" if np.isinf(x).any() else "linear"))


def fmt_steps(v: float, budget: int) -> str:
    if math.isnan(v):
        return "n/a"
    return f"> {budget}" if math.isinf(v) else f"{v:.1f}".rstrip("0").rstrip(".")


def paired_difference_ci(a: np.ndarray, b: np.ndarray, budget: int, n_boot: int = 10000, seed: int = 0) -> tuple[
    float, float, float, float
]:
    """Median over seeds of ``b - a`` (evaluations saved by ``a``), its 95% bootstrap CI, and the share of
    seeds where ``a`` needed fewer evaluations. Runs that missed the optimum count as ``budget + 1``
    (which understates the saving when ``b`` missed)."""
    a = np.where(np.isinf(a), budget + 1, a)
    b = np.where(np.isinf(b), budget + 1, b)
    d = b - a
    rng = np.random.default_rng(seed)
    boots = np.median(d[rng.integers(0, len(d), size=(n_boot, len(d)))], axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(np.median(d)), float(lo), float(hi), float(np.mean(a < b))


def summarise(rows: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    steps = steps_to_optimum(rows, budget)
    bo = [r["bo_seconds"] for r in rows if r.get("bo_seconds") is not None]
    return {
        "n": len(rows),
        "found": int(np.isfinite(steps).sum()),
        "median": censored_quantile(steps, 0.5),
        "p90": censored_quantile(steps, 0.9),
        "regret": {c: float(np.nanmean([r["regret"][str(c)] for r in rows])) if rows else math.nan
                   for c in CHECKPOINTS},
        "bo_seconds": float(np.mean(bo)) if bo else None,
    }


# -- report -----------------------------------------------------------------------------------------------


def _pairs(results: dict[tuple[str, str], list], a: str, b: str, d: str, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps to the optimum of methods ``a`` and ``b`` on the seeds both ran, paired by seed."""
    rows_a = {r["seed"]: r for r in results.get((a, d), [])}
    pairs = [(rows_a[r["seed"]], r) for r in results.get((b, d), []) if r["seed"] in rows_a]
    return steps_to_optimum([x for x, _ in pairs], budget), steps_to_optimum([y for _, y in pairs], budget)


def _verdict(lo: float, hi: float) -> str:
    return "beats" if lo > 0 else ("not shown to beat (CI includes 0)" if hi >= 0 else "LOSES to")


def build_report(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int], budget: int,
                 wall_s: float | None, name: str = "nb201") -> str:
    results = load_results(methods, datasets, seeds)
    summary = {key: summarise(rows, budget) for key, rows in results.items()}
    lines: list[str] = []
    w = lines.append
    w("# NAS-Bench-201: nastune against baselines")
    w("")
    w("**Headline row (issue 13): *nastune, public API, user-level inputs*.** The space is made exactly as a user"
      " (or the web service) makes it: `create_search_space` with op-name encodings"
      " (`(\"nor_conv_3x3\", \"skip_connect\", ...)`) and the plain `encoding_to_net` of the benchmark network"
      " (`benchmarks/nb201/user_space.py`), `preprocess(pretraining_data={params, latency})` (the only pretraining"
      " data), which reads the architecture features from the networks by itself, then `SearchInstance` with"
      " default options. No hand-made feature map, no path encoding. The row *nastune (simultaneous pretraining)*"
      " is issue 5's hand-feature configuration (121-dimension NB201 feature map; params + FLOPs + latency), kept"
      " for comparison.")
    w("")
    w(f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} per method and dataset unless the *found* column says fewer),"
      f" budget {budget} evaluations. Objective: mean 200-epoch validation accuracy (`*_valid_acc`). *To optimum*:"
      " evaluations until the architecture with the best validation accuracy has been evaluated (runs that miss"
      f" it within the budget rank last; `> {budget}` = not reached by that quantile). *Test regret*: best test"
      " accuracy of the benchmark minus the test accuracy of the incumbent (best validation so far), mean over"
      " seeds, in accuracy points; on ImageNet16-120 the best-validation cell is not the best-test cell, so its"
      " regret never reaches 0. *BO s/iter*: mean seconds of one nastune step (fit the surrogate + score all"
      " 15,625 candidates), one thread per run, on a shared machine.")
    w("")
    for d in datasets:
        w(f"## {DATASET_LABEL[d]}")
        w("")
        w("| method | found | to optimum: median | 90th pct | test regret @25 | @50 | @100 | @150 | BO s/iter |")
        w("|---|---|---|---|---|---|---|---|---|")
        for m in methods:
            s = summary[(m, d)]
            if s["n"] == 0:
                continue
            label = METHODS[m].label + (" *(simulated lo-fi)*" if METHODS[m].lofi else "")
            if m == HEADLINE:
                label = f"**{label}**"
            reg = " | ".join(f"{s['regret'][c]:.3f}" for c in CHECKPOINTS)
            bo = f"{s['bo_seconds']:.3f}" if s["bo_seconds"] is not None else "-"
            w(f"| {label} | {s['found']}/{s['n']} | {fmt_steps(s['median'], budget)} | {fmt_steps(s['p90'], budget)}"
              f" | {reg} | {bo} |")
        w("")
    w("## Paired comparisons with the headline row")
    w("")
    w("Median over seeds of the evaluations saved by the headline row relative to the other method (positive ="
      " the headline row needs fewer), with a 95% bootstrap confidence interval (10,000 resamples of the seeds),"
      f" and the share of seeds on which the headline row was faster. A run that missed the optimum counts as"
      f" {budget + 1} evaluations (which understates the saving when the other method missed).")
    w("")
    w("| dataset | compared with | median saving | 95% CI | headline faster on |")
    w("|---|---|---|---|---|")
    others = [m for m in methods if m != HEADLINE and m != "user-transfer"]
    cmp: dict[tuple[str, str], tuple[float, float, float, float]] = {}
    for d in datasets:
        for other in others:
            a, b = _pairs(results, HEADLINE, other, d, budget)
            if len(a) == 0:
                continue
            med, lo, hi, share = paired_difference_ci(a, b, budget)
            cmp[(d, other)] = (med, lo, hi, share)
            w(f"| {DATASET_LABEL[d]} | {METHODS[other].label} | {med:+.1f} | [{lo:+.1f}, {hi:+.1f}] |"
              f" {100 * share:.0f}% of {len(a)} |")
    w("")
    w("## Targets of issue 13")
    w("")
    w("Computed from the tables above (nothing here is typed in by hand):")
    w("")
    for d in datasets:
        ours = summary.get((HEADLINE, d))
        if not ours or ours["n"] == 0:
            continue
        med, p90 = ours["median"], ours["p90"]
        ok_med = med <= TARGET_MEDIAN[d]
        ok_p90 = p90 <= TARGET_P90_RATIO * med
        w(f"* {DATASET_LABEL[d]}: headline median {fmt_steps(med, budget)} (target <= {TARGET_MEDIAN[d]}):"
          f" **{'met' if ok_med else 'MISSED'}**; 90th percentile {fmt_steps(p90, budget)}"
          f" (target <= {TARGET_P90_RATIO} x median = {TARGET_P90_RATIO * med:.1f}):"
          f" **{'met' if ok_p90 else 'MISSED'}**.")
        missing = [b for b in BASELINE_ROWS if (d, b) not in cmp]
        not_beaten = [b for b in BASELINE_ROWS if (d, b) in cmp and cmp[(d, b)][1] <= 0]
        verdict = "met" if not not_beaten and not missing else "MISSED" if not_beaten else "not measured"
        if len(missing) < len(BASELINE_ROWS):  # a report of nastune rows only (no baselines) leaves this to nb201.md
            w(f"  * beats every baseline with a CI that excludes 0: **{verdict}**"
              + (f" (not shown against: {', '.join(METHODS[b].label for b in not_beaten)})" if not_beaten else "")
              + (f" (not run: {', '.join(METHODS[b].label for b in missing)})" if missing else "") + ".")
        for other, what in (("user-nopretrain", "no pretraining"), ("nastune", "issue 5's hand-feature row"),
                            ("user-encoding", "the same search without architecture features"),
                            ("user-ensemble", "the fine-tuned deep ensemble (option surrogate='ensemble')"),
                            ("user-gp-embedding", "the GP on the pretrained representation"),
                            ("user-random-init", "the same search with a random initial design"),
                            ("user-diverse-init", "the same search with the diverse (farthest-point) initial"
                                                  " design")):
            if (d, other) in cmp:
                med_d, lo, hi, _ = cmp[(d, other)]
                w(f"  * the headline row {_verdict(lo, hi)} {what}: median saving {med_d:+.1f} evaluations,"
                  f" 95% CI [{lo:+.1f}, {hi:+.1f}]; medians {fmt_steps(med, budget)} vs"
                  f" {fmt_steps(summary[(other, d)]['median'], budget)}.")
    for d, target in TARGET_TRANSFER.items():
        tr = summary.get(("user-transfer", d))
        if d in datasets and tr and tr["n"]:
            ok = tr["median"] <= target
            w(f"* Transfer, {DATASET_LABEL[d]} warm-started from 100 CIFAR-10 evaluations: median"
              f" {fmt_steps(tr['median'], budget)} (target <= {target}): **{'met' if ok else 'MISSED'}**"
              f" ({tr['n']} seeds).")
    bo_times = [summary[(m, d)]["bo_seconds"] for m in methods for d in datasets
                if METHODS[m].kind in ("bo", "user") and summary[(m, d)]["bo_seconds"] is not None]
    if bo_times:
        w("* BO step (fit the surrogate + score 15,625 candidates) in these runs:"
          f" {min(bo_times):.3f}-{max(bo_times):.3f} s per iteration on one thread of a shared machine;"
          " `benchmarks/results/nb201_speed.md` has the dedicated timing at 15,625 and 1,000,000 candidates.")
    w("")
    w("## Best-value curves")
    w("")
    w(f"![best-value curves]({name}.png)")
    w("")
    w("Top: mean validation regret of the incumbent (best validation accuracy of the benchmark minus the best found"
      " so far, log scale, runs that found the optimum contribute 0). Bottom: share of seeds that have evaluated"
      " the optimum. Dashed: *(simulated lo-fi)* rows, x in budget units.")
    w("")
    w("## Setup and rerun")
    w("")
    w(f"* Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPU cores"
      " shared with other work;"
      + (f" these runs took {wall_s / 3600:.1f} h wall." if wall_s else ""))
    w("* Rerun: `python -m benchmarks.nb201.run --jobs 2 --budget 150`; `--only-report` rewrites this file from the"
      " cached runs in `var/nb201/results/`. Details, the user-level space, the transfer rows and the tuning log:"
      " `benchmarks/nb201/README.md`. `nb201_surrogates.md` and `nb201_initial_design.md` are earlier runs made"
      " when the fine-tuned ensemble was the default.")
    w("")
    return "\n".join(lines)


def build_figure(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int], budget: int,
                 name: str = "nb201") -> Path:
    from benchmarks.nb201.png import Panel, render

    results = load_results(methods, datasets, seeds)
    x = list(range(1, budget + 1))
    top, bottom = [], []
    for d in datasets:
        regret, found = {}, {}
        for m in methods:
            rows = results[(m, d)]
            if not rows:
                continue
            curves = np.array([r["best_curve"] for r in rows], dtype=np.float64)
            regret[METHODS[m].label] = np.nanmean(curves, axis=0).tolist()
            steps = steps_to_optimum(rows, budget)
            found[METHODS[m].label] = [float(np.mean(steps <= k)) for k in x]
        dashed = {METHODS[m].label for m in methods if METHODS[m].lofi}
        top.append(Panel(f"{DATASET_LABEL[d]}: validation regret", x, regret, "mean regret (accuracy points)",
                         log_y=True, y_range=(0.01, 20.0), dashed=dashed))
        bottom.append(Panel(f"{DATASET_LABEL[d]}: optimum found", x, found, "share of seeds", y_range=(0.0, 1.0),
                            dashed=dashed))
    return render(top + bottom, REPORTS / f"{name}.png", columns=len(datasets),
                  title=f"NAS-Bench-201, {len(seeds)} seeds per method, budget {budget}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0-29")
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="discard cached runs of the selected methods")
    parser.add_argument("--only-report", action="store_true")
    parser.add_argument("--report", default="nb201",
                        help="write benchmarks/results/REPORT.md and .png (another name for a subset of the rows)")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    unknown = [m for m in methods if m not in METHODS] + [d for d in datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown method/dataset {unknown}")
    start = time.time()
    if not args.only_report:
        if args.fresh:
            for m in methods:
                for d in datasets:
                    for s in seeds:
                        result_path(m, d, s).unlink(missing_ok=True)
        # slow (BO) jobs first so the two workers stay busy to the end
        jobs = [(m, d, s, args.budget) for m in methods for d in datasets for s in seeds
                if not result_path(m, d, s).exists() and not (METHODS[m].warm_start and d == "cifar10")]
        jobs.sort(key=lambda j: (METHODS[j[0]].kind not in ("bo", "user"), j[2], j[1], j[0]))
        print(f"{len(jobs)} runs to do", file=sys.stderr, flush=True)
        with Pool(args.jobs, maxtasksperchild=20) as pool:
            for k, (m, d, s, wall) in enumerate(pool.imap_unordered(_job, jobs), start=1):
                print(f"[{k}/{len(jobs)}] {m} {d} seed {s}: {wall:.0f} s", file=sys.stderr, flush=True)
    wall_file = VAR / "wall_s.json"
    walls = json.loads(wall_file.read_text()) if wall_file.exists() else {}
    if not args.only_report:
        walls[args.seeds] = walls.get(args.seeds, 0.0) + (time.time() - start)
        wall_file.parent.mkdir(parents=True, exist_ok=True)
        wall_file.write_text(json.dumps(walls))
    report = build_report(methods, datasets, seeds, args.budget, walls.get(args.seeds), args.report)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{args.report}.md").write_text(report + "\n")
    build_figure(methods, datasets, seeds, args.budget, args.report)
    print(report)


if __name__ == "__main__":
    main()
