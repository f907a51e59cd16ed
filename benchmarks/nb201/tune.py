"""Try nastune search options on tuning seeds (>= 1000; the reported seeds 0-29 are never used here).

Example::

    python -m benchmarks.nb201.tune --dataset cifar10 --seeds 1000-1011 --jobs 2 \\
        --options '{"initial_design": "diverse"}'
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool
from typing import Any

import numpy as np

from benchmarks.nb201.common import BUDGET, METHODS, run_one


def _job(args: tuple[str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    return run_one(args[0], args[1], args[2], args[3], options=args[4])


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="nastune", choices=sorted(METHODS))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seeds", default="1000-1011")
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--options", default="{}", help="JSON search options")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    if min(seeds) < 1000:
        parser.error("tune only on seeds >= 1000; seeds 0-29 are the reported ones")
    options = json.loads(args.options)
    start = time.time()
    jobs = [(args.method, args.dataset, s, args.budget, options) for s in seeds]
    with Pool(args.jobs) as pool:
        results = pool.map(_job, jobs)
    steps = np.array([r["to_optimum"] if r["found"] else args.budget + 1 for r in results])
    bo = [r["bo_seconds"] for r in results if r["bo_seconds"] is not None]
    print(
        f"{args.method} {args.dataset} {json.dumps(options)}: median {np.median(steps):.1f}"
        f" p90 {np.percentile(steps, 90):.1f} mean {steps.mean():.1f} found {sum(r['found'] for r in results)}/"
        f"{len(results)} bo_s {np.mean(bo) if bo else float('nan'):.3f} wall {time.time() - start:.0f}s"
        f" {steps.astype(int).tolist()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
