"""Build the digits benchmark table: every encoding trained at a low and a high fidelity for seeds 0, 1, 2.

Usage (from the repository root; CPU, one torch thread; resumable)::

    nohup nice -n 19 .venv/bin/python -m benchmarks.digits.build_table > /tmp/digits_build.log 2>&1 &

Every finished run is appended (and flushed) to ``--partial`` (default ``var/digits_table.partial.csv``);
a killed build started again skips the runs already there. When every run is done, the rows are sorted
and written to ``--out`` (default ``benchmarks/digits/digits_table.csv.xz``), one row per
(encoding, fidelity, seed); see ``examples/digits/table.py`` for the loader.
"""

from __future__ import annotations

import argparse
import csv
import lzma
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from examples.digits.data import load_split
from examples.digits.net import ENCODING_FIELDS
from examples.digits.space import build_encodings
from examples.digits.table import COLUMNS, FIDELITY_EPOCHS, SEEDS
from examples.digits.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "benchmarks" / "digits" / "digits_table.csv.xz"
DEFAULT_PARTIAL = REPO / "var" / "digits_table.partial.csv"


def _done_runs(partial: Path, repair: bool = True) -> set[tuple[int, str, int]]:
    """(index, fidelity, seed) of the complete rows of ``partial``; a torn last line (killed write) is ignored,
    and with ``repair`` (our own file) also cut off, so that the next appended row starts on a line of its own."""
    if not partial.exists():
        return set()
    with partial.open(newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
        if repair:
            partial.write_text("".join(lines), encoding="utf-8")
    rows = list(csv.DictReader(lines))
    return {(int(r["index"]), r["fidelity"], int(r["seed"])) for r in rows if len(r) == len(COLUMNS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--partial", type=Path, default=DEFAULT_PARTIAL)
    parser.add_argument("--limit", type=int, default=None, help="only the first N encodings (smoke test)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--start", type=int, default=0, help="skip the encodings before this index (extra worker)")
    parser.add_argument("--stop", type=int, default=None, help="skip the encodings from this index on (extra worker)")
    parser.add_argument(
        "--also-done",
        type=Path,
        action="append",
        default=[],
        help="another worker's partial file; its finished runs are skipped (repeatable)",
    )
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="work from the last run backwards (a second worker with its own --partial; merge the files after)",
    )
    args = parser.parse_args(argv)

    # one thread: the build must leave the machine's other core free, and tiny nets gain nothing from more
    torch.set_num_threads(1)
    encodings = build_encodings()[: args.limit]
    split = load_split()
    done = _done_runs(args.partial)
    skipped = set().union(*(_done_runs(path, repair=False) for path in args.also_done)) - done
    stop = len(encodings) if args.stop is None else min(args.stop, len(encodings))
    todo = [
        (i, fidelity, seed)
        for i in range(args.start, stop)
        for seed in SEEDS
        for fidelity in FIDELITY_EPOCHS
        if (i, fidelity, seed) not in done and (i, fidelity, seed) not in skipped
    ]
    if args.reverse:
        todo.reverse()
    args.partial.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.partial.exists() or args.partial.stat().st_size == 0
    start = time.perf_counter()
    with args.partial.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(COLUMNS)
        for i, fidelity, seed in tqdm(todo, desc="digits runs", disable=args.no_progress, mininterval=10):
            result = train_and_evaluate(encodings[i], FIDELITY_EPOCHS[fidelity], seed, split)
            writer.writerow(
                [
                    i,
                    *encodings[i],
                    fidelity,
                    FIDELITY_EPOCHS[fidelity],
                    seed,
                    f"{result.valid_acc:.4f}",
                    f"{result.test_acc:.4f}",
                    result.params,
                    int(result.flops),
                    f"{result.wall_s:.4f}",
                ]
            )
            fh.flush()
    print(f"{len(todo)} runs in {time.perf_counter() - start:.0f} s, {len(done)} were already done", flush=True)

    with args.partial.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    fidelity_order = list(FIDELITY_EPOCHS)
    n_fields = len(ENCODING_FIELDS)
    # merged partial files of two workers may both hold a run finished as they met: keep the first
    unique: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        unique.setdefault((row[0], row[n_fields + 1], row[n_fields + 3]), row)
    rows = list(unique.values())
    rows.sort(key=lambda r: (int(r[0]), fidelity_order.index(r[n_fields + 1]), int(r[n_fields + 3])))
    expected = len(encodings) * len(SEEDS) * len(FIDELITY_EPOCHS)
    if len(rows) != expected:
        print(f"{args.partial} has {len(rows)} runs, expected {expected}; not writing {args.out}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(args.out, "wt", newline="", encoding="utf-8", preset=9) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(rows)} runs)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
