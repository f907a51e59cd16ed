"""The GPU paths, checked once on a lent GPU machine: device latency and its metric name, AMP training under
torchrun with NCCL (one evaluation per visible GPU), and the same evaluation on the CPU for comparison.

The service's ``gpu`` queue runs exactly these library calls: profiling with ``latency_device="cuda"`` (the
metric is named after the device, e.g. ``latency_cuda_h200``) and the image-classification evaluator with
``n_gpus >= 1`` (one torchrun process per GPU, NCCL, bf16 autocast). Nothing here is needed by the tests, which
run on machines without a GPU.

Run (prints a table and writes it to ``--out``, default ``benchmarks/results/gpu_check.md``; the *Reading*
section of the committed file is written by hand after a run)::

    python -m benchmarks.gpu.check --out "$OUT/gpu_check.md"

What is measured:

* *latency*: 48 digits CNNs (every 24th encoding) at batch 256 on the GPU (CUDA events) and on one CPU thread,
  and at batch 8192 on the GPU alone, twice on the GPU; Kendall tau of GPU against GPU (repeatability) and of
  GPU against CPU (whether the two devices rank the architectures alike; a space can hold a latency metric per
  device).
* *training*: three digits CNNs, 20 epochs, whole 8x8 images as the service's digits demo trains them, through
  ``create_img_class_evaluator``: on every GPU at once (one evaluation per GPU, AMP on), on one GPU with AMP
  off, and the first one on the CPU (gloo). Accuracy and wall seconds per run; the CPU run is the reference.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from examples.digits import build_encodings, save_hf_dataset
from nastune.evaluators.image_classification import create_img_class_evaluator
from nastune.profiling import device_latency_metric, profile_encodings

ROOT = Path(__file__).resolve().parents[2]
MODEL_SOURCE = (
    "from examples.digits import encoding_to_net as _cnn\n\n\n"
    "def encoding_to_net(encoding, n_classes=10):\n"
    "    return _cnn(encoding, n_classes=n_classes, in_channels=3)\n"
)
BATCHES = ((256, True), (8192, False))  # (batch, also on the CPU)
TRAIN_PICKS = (783, 931, 63)  # the table's best, its 25th and its 50th percentile (indices into build_encodings())


def _gray_net(encoding: Any) -> torch.nn.Module:
    from examples.digits import encoding_to_net

    return encoding_to_net(encoding, n_classes=10, in_channels=1)


def _gpu_latency_pair(encodings: list[Any], batch: int, device: str, metric: str, *, cpu: bool) -> tuple[
        np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Two profiling passes of ``encodings`` at ``batch``: device latency of each, the CPU latency of the first
    (when ``cpu``) and the number of failed encodings."""
    metrics = ("params", "latency") if cpu else ("params",)
    runs = [profile_encodings(_gray_net, encodings, torch.randn(batch, 1, 8, 8), metrics=metrics,
                              latency_device=device, latency_repeats=20, latency_warmup=5) for _ in range(2)]
    failed = len({**runs[0].failures(), **runs[1].failures()})
    return runs[0].metrics[metric], runs[1].metrics[metric], runs[0].metrics["latency"] if cpu else None, failed


def latency_section(device: str = "cuda") -> tuple[list[str], dict[str, Any]]:
    encodings = build_encodings()[::24]
    metric = device_latency_metric(device)
    lines = ["## Device latency", "",
             f"Metric name from the device: `{metric}`. {len(encodings)} digits CNNs (every 24th encoding), median "
             "of 20 forwards after 5 warm-up ones, two profiling passes.", "",
             "| batch | median, device | median, CPU (1 thread) | CPU / device | tau, device pass 1 vs 2 | "
             "tau, device vs CPU | failed |", "|---|---|---|---|---|---|---|"]
    data: dict[str, Any] = {"metric": metric, "rows": []}
    for batch, cpu in BATCHES:
        a, b, c, failed = _gpu_latency_pair(encodings, batch, device, metric, cpu=cpu)
        ok = np.isfinite(a) & np.isfinite(b) & (np.isfinite(c) if c is not None else True)
        row = {"batch": batch, "n": int(ok.sum()), "device_ms": float(np.median(a[ok]) * 1e3),
               "tau_device": float(kendalltau(a[ok], b[ok]).statistic), "failed": failed}
        if c is not None:
            row.update(cpu_ms=float(np.median(c[ok]) * 1e3), ratio=float(np.median(c[ok] / a[ok])),
                       tau_cpu=float(kendalltau(a[ok], c[ok]).statistic))
        data["rows"].append(row)
        cpu_cells = (f"{row['cpu_ms']:.3f} ms | {row['ratio']:.1f}x" if c is not None else "- | -")
        lines.append(f"| {batch} | {row['device_ms']:.3f} ms | {cpu_cells} | {row['tau_device']:.3f} | "
                     f"{row.get('tau_cpu', float('nan')):.3f} | {failed} |")
    return [*lines, ""], data


def _evaluator(dataset: Path, model: Path, work: Path, *, n_gpus: int, amp: bool, device: str | None) -> Any:
    return create_img_class_evaluator(
        str(dataset), 10, n_gpus, model, epochs=20, batch_size=64, image_size=8, min_crop_scale=1.0, crop_pct=1.0,
        amp=amp, seed=0, work_dir=work, cuda_visible_devices=device, reuse_results=False, num_workers=0,
        n_cpu_processes=1, threads_per_process=4,
    )


def training_section(work: Path) -> tuple[list[str], dict[str, Any]]:
    dataset = save_hf_dataset(work / "digits")
    model = work / "digits_rgb.py"
    model.write_text(MODEL_SOURCE)
    encodings = build_encodings()
    picks = [encodings[i] for i in TRAIN_PICKS]
    n_gpus = torch.cuda.device_count()
    rows: list[dict[str, Any]] = []

    def run(label: str, encoding: Any, **kw: Any) -> dict[str, Any]:
        evaluator = _evaluator(dataset, model, work / label.replace(" ", "_"), **kw)
        start = time.perf_counter()
        try:
            accuracy = float(evaluator(encoding))
            error = ""
        except Exception as exc:  # the table reports what failed
            accuracy, error = float("nan"), f"{type(exc).__name__}: {str(exc)[-300:]}"
        return {"setting": label, "encoding": list(encoding), "accuracy": accuracy,
                "wall_s": time.perf_counter() - start, "error": error}

    # one evaluation per GPU at once (each its own torchrun with NCCL), AMP on
    with ThreadPoolExecutor(max_workers=max(1, n_gpus)) as pool:
        jobs = [pool.submit(run, f"gpu{g} amp", picks[g % len(picks)], n_gpus=1, amp=True, device=str(g))
                for g in range(n_gpus)]
        rows += [job.result() for job in jobs]
    for encoding in picks[1:]:
        rows.append(run("gpu0 amp", encoding, n_gpus=1, amp=True, device="0"))
    for encoding in picks:
        rows.append(run("gpu0 fp32", encoding, n_gpus=1, amp=False, device="0"))
    rows.append(run("cpu gloo", picks[0], n_gpus=0, amp=True, device=None))
    lines = ["## Training (image-classification evaluator, torchrun)", "",
             f"{n_gpus} GPU(s) visible; the first rows ran one evaluation per GPU at the same time. 20 epochs of the "
             "digits training split (whole 8x8 images, as the service's digits demo), accuracy on the validation "
             "split.", "",
             "| setting | encoding | accuracy % | wall s | error |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {tuple(r['encoding'])} | {r['accuracy']:.2f} | {r['wall_s']:.1f} | "
                     f"{r['error'] or '-'} |")
    return [*lines, ""], {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.md"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device is visible: run this on a GPU machine")
    header = ["# GPU paths (`python -m benchmarks.gpu.check`)", "",
              f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}, torch {torch.__version__}, "
              f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.", ""]
    lat_lines, lat = latency_section()
    print("\n".join(lat_lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_lines, train = training_section(Path(tmp))
    text = "\n".join(header + lat_lines + train_lines) + "\n"
    print(text, flush=True)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"latency": lat, "training": train}, indent=1))


if __name__ == "__main__":
    main()
