"""Try nastune search options on the digits table's tuning seeds (>= 1000; the reported seeds 0-29 are never
used here). Prints the median budget units to an optimum, its 90th percentile and how many runs found one.

Example::

    python -m benchmarks.digits.tune --method nastune-multifidelity --seeds 1000-1029 --jobs 2 \\
        --options '{"lo_fi_share": 0.5}'
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool
from typing import Any

import numpy as np

from benchmarks.digits.run import BUDGET, DIGITS_METHODS, bundle_path, pretrain, run_one
from benchmarks.nb201.tune import parse_seeds


def _job(args: tuple[str, int, int, dict[str, Any]]) -> dict[str, Any]:
    return run_one(args[0], args[1], args[2], options=args[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="nastune", choices=sorted(DIGITS_METHODS))
    parser.add_argument("--seeds", default="1000-1029")
    parser.add_argument("--budget", type=int, default=BUDGET)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--options", default="{}", help="JSON search options")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    if min(seeds) < 1000:
        parser.error("tune on seeds >= 1000; 0-29 are the reported seeds")
    options = json.loads(args.options)
    method = DIGITS_METHODS[args.method]
    start = time.time()
    with Pool(args.jobs) as pool:
        if method.pretrained:
            list(pool.imap_unordered(pretrain, [(method.simultaneous, s) for s in seeds
                                                if not bundle_path(method.simultaneous, s).exists()]))
        rows = pool.map(_job, [(args.method, s, args.budget, options) for s in seeds])
    steps = np.array([r["to_optimum"] if r["found"] else np.inf for r in rows])
    found = int(np.isfinite(steps).sum())
    print(f"{args.method} {options}: median {np.percentile(steps, 50, method='higher'):g}, 90th pct "
          f"{np.percentile(steps, 90, method='higher'):g}, found {found}/{len(seeds)}, "
          f"per seed {[None if not np.isfinite(x) else round(float(x), 2) for x in steps]} "
          f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
