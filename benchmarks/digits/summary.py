"""Print the figures of the digits table that ``benchmarks/digits/README.md`` quotes (markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from examples.digits import CHOICES, ENCODING_FIELDS, load_table


def summary_lines(path: str | Path | None = None) -> list[str]:
    """Spread per fidelity, lo/hi rank correlation, seed noise, optimum ties, run time, per-choice means."""
    t = load_table(path)
    lines = ["| fidelity | epochs | valid acc min / median / max (%) | test acc min / median / max (%) |"]
    lines.append("|---|---|---|---|")
    for f, epochs in t.epochs.items():
        v, s = t.valid_acc[f], t.test_acc[f]
        lines.append(
            f"| {f} | {epochs} | {v.min():.2f} / {np.median(v):.2f} / {v.max():.2f}"
            f" | {s.min():.2f} / {np.median(s):.2f} / {s.max():.2f} |"
        )
    lines.append("")
    rho = spearmanr(t.valid_acc["lo"], t.valid_acc["hi"])[0]
    tau = kendalltau(t.valid_acc["lo"], t.valid_acc["hi"])[0]
    top = np.argsort(-t.valid_acc["hi"])[:50]
    rho_top = spearmanr(t.valid_acc["lo"][top], t.valid_acc["hi"][top])[0]
    lines.append(
        f"* Rank correlation of mean valid acc, lo vs hi: Spearman {rho:.3f}, Kendall {tau:.3f}"
        f" (top 50 by hi: Spearman {rho_top:.3f})."
    )
    vt = spearmanr(t.valid_acc["hi"], t.test_acc["hi"])[0]
    lines.append(f"* Spearman of mean valid vs mean test acc at hi: {vt:.3f}.")
    for f in t.epochs:
        sd = np.std(t.valid_acc_seeds[f], axis=1, ddof=1)
        lines.append(
            f"* Seed noise at {f}: std of valid acc over the {len(t.seeds)} seeds, median {np.median(sd):.2f},"
            f" 90th pct {np.percentile(sd, 90):.2f} points."
        )
    hi = t.valid_acc["hi"]
    ties = np.flatnonzero(hi == hi.max())
    lines.append(
        f"* Optimum (mean hi valid acc {hi.max():.4f} %): {len(ties)} encoding(s) tie: "
        + ", ".join(f"`{t.encodings[i]}`" for i in ties)
        + "."
    )
    near = int(np.sum(hi >= hi.max() - 0.5))
    lines.append(
        f"* Encodings within 0.5 points of the optimum: {near}; best test acc at hi {t.test_acc['hi'].max():.2f} %,"
        f" test acc of the best-valid encoding {t.test_acc['hi'][ties].max():.2f} %."
    )
    for f in t.epochs:
        total = float(np.sum(t.wall_s_seeds[f]))
        lines.append(f"* Sum of run times at {f}: {total / 60:.1f} min (mean {np.mean(t.wall_s[f]):.3f} s per run).")
    lines.append(
        f"* Params {int(t.params.min()):,} to {int(t.params.max()):,}; FLOPs {t.flops.min():,.0f} to"
        f" {t.flops.max():,.0f} per image."
    )
    lines.append("")
    lines.append("| field | value: mean hi valid acc (%) over the encodings with it |")
    lines.append("|---|---|")
    for j, (field, choices) in enumerate(zip(ENCODING_FIELDS, CHOICES, strict=True)):
        column = [e[j] for e in t.encodings]
        means = [f"{c}: {np.mean([h for h, v in zip(hi, column, strict=True) if v == c]):.1f}" for c in choices]
        lines.append(f"| {field} | {', '.join(means)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", default=None, help="table file (default: the committed one)")
    print("\n".join(summary_lines(parser.parse_args().table)))


if __name__ == "__main__":
    main()
