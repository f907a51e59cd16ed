"""Digits benchmark (issue 13, section 4): the NAS-Bench-201 methods on the digits table, real low fidelity.

Run (after ``python -m benchmarks.digits.build_table``; see ``benchmarks/digits/README.md``)::

    python -m benchmarks.digits.run --jobs 2    # prints the report, writes benchmarks/results/digits.md + .png

Each run is cached as ``var/digits/results/<method>/digits-<seed>.json`` (``--fresh`` discards them), so an
interrupted benchmark continues where it stopped; ``--only-report`` rebuilds the report from the cache.
Methods, statistics and report conventions are those of ``benchmarks/nb201`` (imported, not copied); what
differs is the space (1,152 mixed int/str encodings, nastune's default features), the pretraining data
(params and FLOPs from the table) and the low fidelity, which is a real 2-epoch training run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.nb201.common import BUDGET, CHECKPOINTS, METHODS, Bench, Method, ask_tell_until, run_record
from benchmarks.nb201.run import fmt_steps, paired_difference_ci, steps_to_optimum, summarise
from examples.digits import FIDELITY_EPOCHS, load_table
from nastune import SearchInstance, create_search_space, load_search_space
from nastune.baselines import encoding_codes, make_baseline, run_strategy

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("NASWEB_DIGITS_VAR", ROOT / "var" / "digits"))
RESULTS = VAR / "results"
#: the table the searches look up (default: the committed one)
TABLE = os.environ.get("NASWEB_DIGITS_TABLE") or None
REPORT = ROOT / "benchmarks" / "results" / "digits.md"
FIGURE = ROOT / "benchmarks" / "results" / "digits.png"
#: a low-fidelity evaluation costs its share of the high fidelity's epochs
LOFI_COST = FIDELITY_EPOCHS["lo"] / FIDELITY_EPOCHS["hi"]
PRETRAIN_METRICS = ("params", "flops")

#: the NB201 rows without the proxies row (no training-free proxies were computed for this space)
DIGITS_METHOD_NAMES: tuple[str, ...] = (
    "nastune",
    "nastune-ensemble",
    "nastune-ei",
    "nastune-sequential",
    "nastune-nopretrain",
    "nastune-multifidelity",
    "random",
    "evolution",
    "local_search",
    "tpe",
    "descending_params",
)
DIGITS_METHODS: dict[str, Method] = {
    name: (
        replace(
            METHODS[name],
            metrics=PRETRAIN_METRICS,
            label=f"nastune multi-fidelity (real lo-fi, {FIDELITY_EPOCHS['lo']} epochs)",
        )
        if METHODS[name].lofi
        else replace(METHODS[name], metrics=PRETRAIN_METRICS)
    )
    for name in DIGITS_METHOD_NAMES
}


@cache
def digits_bench() -> tuple[Bench, np.ndarray, list[tuple]]:
    """The benchmark (objective: mean 8-epoch validation accuracy), the tied optima, the encodings."""
    t = load_table(TABLE)
    valid, test = t.valid_acc["hi"], t.test_acc["hi"]
    metrics = {"params": t.params.astype(np.float64), "flops": t.flops.astype(np.float64)}
    optima = np.flatnonzero(valid == valid.max())
    bench = Bench("digits", valid, test, t.valid_acc["lo"], metrics, int(optima[0]), float(test.max()))
    return bench, optima, t.encodings


def bundle_path(simultaneous: bool, seed: int) -> Path:
    return VAR / "pretrained" / f"digits-{'sim' if simultaneous else 'seq'}-{seed}.nastune"


def pretrain(args: tuple[bool, int]) -> Path:
    """Create the space with the public API, pretrain on params + FLOPs (seeded), save the bundle."""
    simultaneous, seed = args
    torch.set_num_threads(1)
    path = bundle_path(simultaneous, seed)
    if path.exists():
        return path
    b, _, encodings = digits_bench()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.nastune")
    space = create_search_space("digits", tmp, encodings)
    space.preprocess(
        pretraining_data={m: b.metrics[m] for m in PRETRAIN_METRICS},
        seed=seed,
        simultaneous=simultaneous,
        progress=False,
        save=True,
    )
    os.replace(tmp, path)
    return path


def run_one(method_name: str, seed: int, budget: int = BUDGET, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run of one method (``options`` override the method's search options); the same fields as
    :func:`benchmarks.nb201.common.run_one`."""
    torch.set_num_threads(1)
    method = DIGITS_METHODS[method_name]
    b, optima, encodings = digits_bench()
    optimum_set = set(optima.tolist())
    start = time.perf_counter()
    bo_seconds: list[float] = []
    if method.kind == "bo":
        if method.pretrained:
            space = load_search_space(bundle_path(method.simultaneous, seed))
        else:
            space = create_search_space("digits", VAR / "unused.nastune", encodings)
        s = SearchInstance(
            f"{method_name}-digits-{seed}",
            None,
            search_space=space,
            seed=seed,
            progress=False,
            hi_fi_cost=1.0,
            lo_fi_cost=LOFI_COST if method.lofi else None,
            eval_budget=budget,
            pretrained=method.pretrained,
            **{**method.options, **(options or {})},
        )
        bo_seconds = ask_tell_until(s, b, lambda i: i in optimum_set)
        hist = s.history
        units = np.cumsum([h["budget_units"] for h in hist])
        hi = [(h["index"], float(u)) for h, u in zip(hist, units, strict=True) if h["fidelity"] == "hi"]
        n_lo = sum(1 for h in hist if h["fidelity"] == "lo")
    else:
        codes = encoding_codes(np.array(encodings, dtype=object))
        kw: dict[str, Any] = {"metric": b.metrics["params"]} if method.kind == "descending_params" else {}
        strategy = make_baseline(method.kind, codes, seed, **kw)
        hist_b = run_strategy(strategy, lambda i: float(b.valid[i]), budget, stop=lambda i, v: i in optimum_set)
        hi = [(i, float(k + 1)) for k, (i, _) in enumerate(hist_b)]
        n_lo = 0
    return run_record(method_name, "digits", seed, budget, b, hi, n_lo, lambda i: i in optimum_set, bo_seconds, start)


def result_path(method: str, seed: int) -> Path:
    return RESULTS / method / f"digits-{seed}.json"


def _job(args: tuple[str, int, int]) -> tuple[str, int, float]:
    method, seed, budget = args
    result = run_one(method, seed, budget)
    path = result_path(method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)
    return method, seed, result["wall_s"]


def load_results(methods: Sequence[str], seeds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    return {
        m: [json.loads(result_path(m, s).read_text()) for s in seeds if result_path(m, s).exists()] for m in methods
    }


def table_facts() -> list[str]:
    """Lines describing the table the searches ran on (spread, lo/hi rank correlation, optimum ties)."""
    t = load_table(TABLE)
    b, optima, encodings = digits_bench()
    rho = spearmanr(t.valid_acc["lo"], t.valid_acc["hi"])[0]
    best = ", ".join(f"`{encodings[i]}`" for i in optima[:3])
    return [
        f"* Objective: mean validation accuracy over seeds {list(t.seeds)} after {FIDELITY_EPOCHS['hi']} epochs;"
        f" range {b.valid.min():.2f}-{b.valid.max():.2f} %, median {np.median(b.valid):.2f} %.",
        f"* Optimum: {len(optima)} encoding(s) tie at {b.valid.max():.4f} % ({best}); a run has found the optimum"
        " when it has evaluated any of them at the high fidelity. Best test accuracy"
        f" {b.best_test:.2f} %.",
        f"* Low fidelity: the mean validation accuracy of the real {FIDELITY_EPOCHS['lo']}-epoch runs, Spearman"
        f" {rho:.3f} with the objective; cost {LOFI_COST:g} of a high-fidelity evaluation (epochs ratio).",
    ]


Paired = Callable[[str, str], "tuple[float, float, float, float, int] | None"]


def target_lines(summary: dict[str, dict[str, Any]], paired: Paired, budget: int) -> list[str]:
    """Issue 13's digits targets, computed from the tables (``paired(first, second)`` as in the report)."""
    out = ["## Targets of issue 13", "", "Computed from the tables above (nothing here is typed in by hand):", ""]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**MISSED**"

    default = summary.get("nastune", {})
    evolution = summary.get("evolution", {})
    if default.get("n") and evolution.get("n"):
        third = evolution["median"] / 3
        out.append(f"* Median {fmt_steps(default['median'], budget)} evaluations to the optimum, target <= a third"
                   f" of regularized evolution's ({fmt_steps(evolution['median'], budget)} / 3 = {third:.1f}):"
                   f" {verdict(default['median'] <= third)}.")
    baselines = ("random", "evolution", "local_search", "tpe", "descending_params")
    shown = {b: paired("nastune", b) for b in baselines}
    not_shown = [DIGITS_METHODS[b].label for b, f in shown.items() if f is not None and f[1] <= 0]
    if any(f is not None for f in shown.values()):
        out.append("* The default beats every baseline with a CI that excludes 0: "
                   + (verdict(True) if not not_shown else f"{verdict(False)} (not shown against: "
                      f"{', '.join(not_shown)})") + ".")
    nopre = paired("nastune", "nastune-nopretrain")
    if nopre is not None:
        med, lo, hi, _share, _n = nopre
        out.append(f"* Pretraining beats no pretraining with a CI that excludes 0: {verdict(lo > 0)} (median saving"
                   f" {med:+.1f}, 95% CI [{lo:+.1f}, {hi:+.1f}]).")
    multi = summary.get("nastune-multifidelity", {})
    if multi.get("n") and default.get("n"):
        ratio = multi["median"] / default["median"]
        out.append(f"* Multi-fidelity (real low fidelity): median {fmt_steps(multi['median'], budget)} budget units,"
                   f" {ratio:.2f}x the high-fidelity-only search's {fmt_steps(default['median'], budget)}, target"
                   f" <= 0.6x: {verdict(ratio <= 0.6)}.")
    out += ["", "What was tried on the misses: `benchmarks/digits/README.md`, \"Searches on this table\".", ""]
    return out


def build_report(methods: Sequence[str], seeds: Sequence[int], budget: int, wall_s: float | None) -> str:
    results = load_results(methods, seeds)
    summary = {m: summarise(rows, budget) for m, rows in results.items()}
    lines: list[str] = []
    w = lines.append
    w("# Digits: nastune against baselines on a real multi-fidelity table")
    w("")
    w(
        f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} per method), budget {budget} evaluations, on the 1,152-encoding"
        " digits CNN space (`examples/digits`, table `benchmarks/digits/digits_table.csv.xz`). Columns as in"
        " `nb201.md`: *to optimum* = evaluations (budget units) until an optimum was evaluated at the high"
        " fidelity (runs that miss rank last); *test regret* = best test accuracy minus the incumbent's, mean over"
        " seeds, in accuracy points; *BO s/iter* = mean seconds of one `ask(1)` after the initial design, one thread."
        " nastune rows use the public API with default options: default features of the mixed encodings,"
        " surrogate pretrained on params + FLOPs from the table."
    )
    w("")
    lines.extend(table_facts())
    w("")
    w("| method | found | to optimum: median | 90th pct | test regret @25 | @50 | @100 | @150 | BO s/iter |")
    w("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        s = summary[m]
        if s["n"] == 0:
            continue
        reg = " | ".join(f"{s['regret'][c]:.3f}" for c in CHECKPOINTS)
        bo = f"{s['bo_seconds']:.3f}" if s["bo_seconds"] is not None else "-"
        w(
            f"| {DIGITS_METHODS[m].label} | {s['found']}/{s['n']} | {fmt_steps(s['median'], budget)}"
            f" | {fmt_steps(s['p90'], budget)} | {reg} | {bo} |"
        )
    w("")
    w("## Paired comparisons (by seed)")
    w("")
    w(
        "Median over seeds of the evaluations (budget units) saved by the first method relative to the second"
        " (positive = the first needs fewer), 95% bootstrap CI (10,000 resamples of the seeds), and the share of"
        f" seeds on which the first was faster. A run that missed the optimum counts as {budget + 1}."
    )
    w("")
    w("| method | compared with | median saving | 95% CI | faster on |")
    w("|---|---|---|---|---|")
    pairs_to_show = [
        ("nastune", "nastune-nopretrain"),
        ("nastune", "nastune-ensemble"),
        ("nastune", "nastune-sequential"),
        ("nastune", "descending_params"),
        ("nastune", "random"),
        ("nastune", "evolution"),
        ("nastune", "local_search"),
        ("nastune", "tpe"),
        ("nastune-multifidelity", "nastune"),
    ]

    def paired(first: str, second: str) -> tuple[float, float, float, float, int] | None:
        if first not in results or second not in results:
            return None
        base = {r["seed"]: r for r in results[first]}
        pairs = [(base[r["seed"]], r) for r in results[second] if r["seed"] in base]
        if not pairs:
            return None
        a = steps_to_optimum([p[0] for p in pairs], budget)
        b = steps_to_optimum([p[1] for p in pairs], budget)
        return (*paired_difference_ci(a, b, budget), len(pairs))

    for first, second in pairs_to_show:
        found = paired(first, second)
        if found is None:
            continue
        med, lo, hi, share, n = found
        w(
            f"| {DIGITS_METHODS[first].label} | {DIGITS_METHODS[second].label} | {med:+.1f} | [{lo:+.1f}, {hi:+.1f}]"
            f" | {100 * share:.0f}% of {n} |"
        )
    w("")
    lines.extend(target_lines(summary, paired, budget))
    w("![best-value curves](digits.png)")
    w("")
    w(
        "Left: mean validation regret of the incumbent (log scale; runs that found an optimum contribute 0)."
        " Right: share of seeds that have evaluated an optimum. Dashed: multi-fidelity, x in budget units."
    )
    w("")
    w("## Setup and rerun")
    w("")
    w(
        f"* Machine: {platform.platform()}, Python {platform.python_version()}, torch {torch.__version__},"
        f" {os.cpu_count()} CPU cores" + (f"; whole benchmark {wall_s / 60:.0f} min wall." if wall_s else ".")
    )
    w(
        "* Rerun: `python -m benchmarks.digits.run --jobs 2`; `--only-report` rewrites this file from the cached"
        " runs in `var/digits/results/`. The table and how it was built: `benchmarks/digits/README.md`."
    )
    w("")
    return "\n".join(lines)


def build_figure(methods: Sequence[str], seeds: Sequence[int], budget: int) -> Path:
    from benchmarks.nb201.png import Panel, render

    results = load_results(methods, seeds)
    x = list(range(1, budget + 1))
    regret, found = {}, {}
    for m in methods:
        rows = results[m]
        if not rows:
            continue
        curves = np.array([r["best_curve"] for r in rows], dtype=np.float64)
        regret[DIGITS_METHODS[m].label] = np.nanmean(curves, axis=0).tolist()
        steps = steps_to_optimum(rows, budget)
        found[DIGITS_METHODS[m].label] = [float(np.mean(steps <= k)) for k in x]
    dashed = {DIGITS_METHODS[m].label for m in methods if DIGITS_METHODS[m].lofi}
    panels = [
        Panel(
            "digits: validation regret",
            x,
            regret,
            "mean regret (accuracy points)",
            log_y=True,
            y_range=(0.01, 50.0),
            dashed=dashed,
        ),
        Panel("digits: optimum found", x, found, "share of seeds", y_range=(0.0, 1.0), dashed=dashed),
    ]
    return render(panels, FIGURE, columns=2, title=f"Digits CNN space, {len(seeds)} seeds per method, budget {budget}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(DIGITS_METHODS))
    parser.add_argument("--seeds", default="0-29")
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="discard cached runs of the selected methods")
    parser.add_argument("--only-report", action="store_true")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in DIGITS_METHODS]
    if unknown:
        parser.error(f"unknown method {unknown}; choose from {list(DIGITS_METHODS)}")
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    start = time.time()
    if not args.only_report:
        if args.fresh:
            for m in methods:
                for s in seeds:
                    result_path(m, s).unlink(missing_ok=True)
        jobs = [(m, s, args.budget) for m in methods for s in seeds if not result_path(m, s).exists()]
        schemes = sorted({(DIGITS_METHODS[m].simultaneous, s) for m, s, _ in jobs if DIGITS_METHODS[m].pretrained})
        jobs.sort(key=lambda j: (DIGITS_METHODS[j[0]].kind != "bo", j[1], j[0]))
        print(f"{len(schemes)} pretrained spaces, {len(jobs)} runs to do", file=sys.stderr, flush=True)
        with Pool(args.jobs, maxtasksperchild=20) as pool:
            for _ in pool.imap_unordered(pretrain, schemes):
                pass
            for k, (m, s, wall) in enumerate(pool.imap_unordered(_job, jobs), start=1):
                print(f"[{k}/{len(jobs)}] {m} seed {s}: {wall:.0f} s", file=sys.stderr, flush=True)
    wall_file = VAR / "wall_s.json"
    walls = json.loads(wall_file.read_text()) if wall_file.exists() else {}
    if not args.only_report:
        walls[args.seeds] = walls.get(args.seeds, 0.0) + (time.time() - start)
        wall_file.parent.mkdir(parents=True, exist_ok=True)
        wall_file.write_text(json.dumps(walls))
    report = build_report(methods, seeds, args.budget, walls.get(args.seeds))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report + "\n")
    build_figure(methods, seeds, args.budget)
    print(report)


if __name__ == "__main__":
    main()
