"""Image-classification evaluator: train an encoding's network with torchrun and return its accuracy (%).

``create_img_class_evaluator`` (the paper's helper) returns a callable ``evaluator(encoding) -> float``
for :class:`nastune.SearchInstance`. Each call trains ``encoding_to_net(encoding, n_classes)`` from
``config_to_model_file`` in a ``torchrun`` subprocess (DDP: NCCL on ``n_gpus`` GPUs, gloo on CPU
when ``n_gpus=0``), then measures top-1 accuracy on ``eval_split``. Hi-fi and lo-fi evaluators differ
only in ``epochs``.

Every run has its own directory under ``work_dir`` named by a hash of the encoding and the
training options, holding ``config.json`` (the run's full specification), ``train.log`` (the
trainer's output, which a web page can tail), ``checkpoint.pt`` (written after every epoch, so
running the same evaluation again after a crash resumes it) and ``result.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nastune.errors import NastuneError

from ._train_image_classifier import RESULT_NAME, TrainingConfig

__all__ = [
    "DatasetError",
    "ImageClassificationEvaluator",
    "TrainingError",
    "TrainingResult",
    "arrays_to_dataset",
    "create_img_class_evaluator",
]

logger = logging.getLogger("nastune")

CONFIG_NAME = "config.json"
LOG_NAME = "train.log"
_OFFLINE_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_REPO_ROOT = Path(__file__).resolve().parents[2]


class TrainingError(NastuneError):
    """A training run failed; the message ends with the tail of the run's log."""


class DatasetError(TrainingError, ValueError):
    """The dataset cannot be used as configured (missing split, wrong number of classes, no image column)."""


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What one evaluation produced. ``accuracy`` is top-1 accuracy in % on the evaluation split."""

    accuracy: float
    run_dir: Path
    log_path: Path
    result_path: Path
    details: dict[str, Any]


def _tail(path: Path, n_chars: int = 4000) -> str:
    """The last ``n_chars`` characters of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - n_chars))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _file_digest(path: Path) -> str:
    """sha256 of a model file, or of every .py file of a package directory (so edits start new runs)."""
    digest = hashlib.sha256()
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


ARRAY_SPLITS = ("train", "validation")


def _images_uint8(images: Any, name: str) -> np.ndarray:
    """``images`` as ``(n, H, W, C)`` uint8 with C 1 or 3, or a ``DatasetError`` saying what is wrong."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    elif array.ndim == 4 and array.shape[-1] not in (1, 3) and array.shape[1] in (1, 3):
        array = np.moveaxis(array, 1, -1)  # channels first, as torch keeps images
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or min(array.shape[:3]) < 1:
        raise DatasetError(f"{name} has shape {np.shape(images)}; give (n, H, W), (n, H, W, C) or (n, C, H, W) "
                           "images with C = 1 or 3")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DatasetError(f"{name} holds floats outside [0, 1]; scale them to [0, 1] or pass uint8 pixels")
        return np.rint(array * 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        if array.min() < 0 or array.max() > 255:
            raise DatasetError(f"{name} holds integers outside 0..255; pass uint8 pixels or floats in [0, 1]")
        return array.astype(np.uint8)
    raise DatasetError(f"{name} has dtype {array.dtype}; pass uint8 pixels or floats in [0, 1]")


def arrays_to_dataset(arrays: Sequence[Any], n_classes: int, folder: str | os.PathLike[str]) -> Path:
    """Write in-memory ``(X_train, y_train, X_valid, y_valid)`` as a ``save_to_disk`` folder the trainer reads.

    Shapes: ``X_*: (n, H, W)``, ``(n, H, W, C)`` or ``(n, C, H, W)`` with ``C`` 1 or 3, uint8 pixels or floats
    in [0, 1]; ``y_*: (n,)`` integer labels in ``0 .. n_classes - 1``. The folder is named by a digest of the
    arrays inside ``folder``, so the same arrays give the same folder (and the same run directories, which
    resume) and it is written only once. Returns the dataset folder (splits ``train`` and ``validation``).
    """
    if len(arrays) != 4:
        raise DatasetError(f"an in-memory dataset is (X_train, y_train, X_valid, y_valid); got {len(arrays)} items")
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    digest = hashlib.sha256(f"classes={n_classes}".encode())
    for split, (images, labels) in zip(ARRAY_SPLITS, (arrays[0:2], arrays[2:4]), strict=True):
        x_name, y_name = ("X_train", "y_train") if split == "train" else ("X_valid", "y_valid")
        pixels = _images_uint8(images, x_name)
        targets = np.asarray(labels)
        if targets.ndim != 1 or len(targets) != len(pixels):
            raise DatasetError(f"{y_name} has shape {targets.shape}; give one label per image of {x_name} "
                               f"({len(pixels)})")
        if not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= n_classes:
            raise DatasetError(f"{y_name} must hold integer labels from 0 to {n_classes - 1} (n_classes={n_classes})")
        parts[split] = (pixels, targets.astype(np.int64))
        for array in parts[split]:
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    if parts["train"][0].shape[1:] != parts["validation"][0].shape[1:]:
        raise DatasetError(f"X_train images are {parts['train'][0].shape[1:]} but X_valid images are "
                           f"{parts['validation'][0].shape[1:]}; both need the same (H, W, C)")
    target = Path(folder) / f"arrays-{digest.hexdigest()[:16]}"
    if (target / "dataset_dict.json").is_file():
        return target
    import datasets
    from PIL import Image

    features = datasets.Features(image=datasets.Image(),
                                 label=datasets.ClassLabel(names=[str(k) for k in range(n_classes)]))
    splits = {}
    for split, (pixels, targets) in parts.items():
        images = [Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in pixels]
        splits[split] = datasets.Dataset.from_dict({"image": images, "label": targets.tolist()}, features=features)
    partial = target.with_name(f".{target.name}-{os.getpid()}")
    datasets.DatasetDict(splits).save_to_disk(str(partial))
    partial.rename(target)  # atomic: a concurrent or killed writer never leaves a half folder behind the name
    return target


class ImageClassificationEvaluator:
    """Callable ``evaluator(encoding) -> accuracy %`` that trains each encoding in a torchrun subprocess.

    Build it with :func:`create_img_class_evaluator`. ``evaluate`` returns the full
    :class:`TrainingResult`; ``run_dir_for`` tells where a run's files (and its log) will be
    before it starts. Raises :class:`DatasetError` for dataset problems and
    :class:`TrainingError` for any other failed run (a search records both as failed evaluations).
    """

    def __init__(
        self,
        config: TrainingConfig,
        *,
        n_gpus: int,
        n_cpu_processes: int,
        work_dir: Path,
        cuda_visible_devices: str | None,
        offline: bool,
        timeout_s: float | None,
        reuse_results: bool,
        python: str,
        env: Mapping[str, str] | None,
        threads_per_process: int | None,
        model_digest: str,
    ) -> None:
        self.config = config
        self.n_gpus = n_gpus
        self.n_cpu_processes = n_cpu_processes
        self.work_dir = work_dir
        self.cuda_visible_devices = cuda_visible_devices
        self.offline = offline
        self.timeout_s = timeout_s
        self.reuse_results = reuse_results
        self.python = python
        self.env = dict(env) if env is not None else None
        self.threads_per_process = threads_per_process
        self.model_digest = model_digest

    @property
    def n_processes(self) -> int:
        """Processes torchrun starts: one per GPU, or ``n_cpu_processes`` on CPU."""
        return self.n_gpus if self.n_gpus > 0 else self.n_cpu_processes

    def config_for(self, encoding: Sequence[Any]) -> TrainingConfig:
        """The training configuration of one encoding."""
        return dataclasses.replace(self.config, encoding=list(encoding))

    def run_dir_for(self, encoding: Sequence[Any]) -> Path:
        """Directory of this encoding's run: stable across calls, so a re-run resumes or reuses it."""
        config = self.config_for(encoding)
        key = json.dumps([config.fingerprint(), self.model_digest], sort_keys=True)
        return self.work_dir / f"run-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def log_tail(self, encoding: Sequence[Any], n_chars: int = 4000) -> str:
        """The last ``n_chars`` characters of the run's ``train.log`` ('' before the run starts)."""
        return _tail(self.run_dir_for(encoding) / LOG_NAME, n_chars)

    def command(self, config_path: Path) -> list[str]:
        """The torchrun command line of a run."""
        return [
            self.python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc-per-node={self.n_processes}",
            "-m",
            "nastune.evaluators._train_image_classifier",
            str(config_path),
        ]

    def child_env(self) -> dict[str, str]:
        """Environment of the torchrun process: GPU selection, offline switches, thread count, import path."""
        env = dict(os.environ if self.env is None else self.env)
        if self.n_gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif self.cuda_visible_devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices
        if self.offline:
            env.update(_OFFLINE_ENV)
        threads = self.threads_per_process or max(1, (os.cpu_count() or 1) // self.n_processes)
        env["OMP_NUM_THREADS"] = str(threads)
        env["PYTHONUNBUFFERED"] = "1"
        paths = [str(_REPO_ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def evaluate(self, encoding: Sequence[Any], *, run_dir: str | Path | None = None) -> TrainingResult:
        """Train and evaluate one encoding; resumes from the run's checkpoint if a previous call was killed."""
        config = self.config_for(encoding)
        run_path = Path(run_dir) if run_dir is not None else self.run_dir_for(encoding)
        run_path.mkdir(parents=True, exist_ok=True)
        config_path = run_path / CONFIG_NAME
        log_path = run_path / LOG_NAME
        result_path = run_path / RESULT_NAME
        if self.reuse_results and result_path.is_file() and config_path.is_file():
            previous = json.loads(result_path.read_text())
            if previous.get("status") == "ok" and previous.get("fingerprint") == config.fingerprint():
                logger.info("evaluation of %s: %.2f%% (reused %s)", list(encoding), previous["accuracy"], run_path)
                return TrainingResult(float(previous["accuracy"]), run_path, log_path, result_path, previous)
        result_path.unlink(missing_ok=True)
        config_path.write_text(config.to_json())
        command = self.command(config_path)
        started = time.monotonic()
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=run_path,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                return_code = process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self._stop(process)
                raise TrainingError(
                    f"training of {list(encoding)} ran past timeout_s={self.timeout_s}; it was stopped and will "
                    f"resume from its last checkpoint next time. Log {log_path}:\n{_tail(log_path)}"
                ) from None
            except BaseException:
                self._stop(process)
                raise
        duration = time.monotonic() - started
        result = json.loads(result_path.read_text()) if result_path.is_file() else None
        if result is not None and result.get("status") == "ok":
            if return_code != 0:  # the work finished and was recorded; a worker died in teardown
                logger.warning("torchrun exited with %s after %s's result was written; keeping the result",
                               return_code, list(encoding))
            accuracy = float(result["accuracy"])
            logger.info(
                "evaluation of %s: %.2f%% after %d epochs in %.0f s (%s)",
                list(encoding),
                accuracy,
                config.epochs,
                duration,
                run_path,
            )
            return TrainingResult(accuracy, run_path, log_path, result_path, result)
        status = result.get("status") if result else None
        message = result.get("error") if result else None
        if result is not None and result.get("error_type") == "dataset":
            raise DatasetError(message or f"dataset problem; see {log_path}")
        if status == "stopped":
            raise TrainingError(
                f"training of {list(encoding)} was stopped before its last epoch ({message}); call again to resume"
            )
        raise TrainingError(
            f"training of {list(encoding)} failed (exit status {return_code})"
            + (f": {message}" if message else "")
            + f". Log {log_path}:\n{_tail(log_path)}"
        )

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """Terminate the torchrun process group this evaluator started, then kill it if it lingers."""
        for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def __call__(self, encoding: Sequence[Any]) -> float:
        """Accuracy in % of the encoding's network after ``epochs`` epochs of training."""
        return self.evaluate(encoding).accuracy

    def __repr__(self) -> str:
        return (
            f"ImageClassificationEvaluator(dataset={self.config.dataset!r}, epochs={self.config.epochs}, "
            f"n_processes={self.n_processes}, work_dir={str(self.work_dir)!r})"
        )


def create_img_class_evaluator(
    dataset: str | os.PathLike[str] | Sequence[Any],
    n_classes: int,
    n_gpus: int,
    config_to_model_file: str | os.PathLike[str],
    dataset_config: str | None = None,
    eval_split: str = "validation",
    reparam: bool = True,
    epochs: int = 12,
    batch_size: int = 128,
    *,
    train_split: str = "train",
    image_size: int = 224,
    min_crop_scale: float = 0.08,
    crop_pct: float = 0.875,
    optimizer: str = "sgd",
    lr: float | None = None,
    weight_decay: float | None = None,
    warmup_epochs: int | None = None,
    label_smoothing: float = 0.1,
    amp: bool = True,
    seed: int = 0,
    deterministic: bool = True,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    model_function: str = "encoding_to_net",
    work_dir: str | os.PathLike[str] | None = None,
    cuda_visible_devices: str | None = None,
    n_cpu_processes: int = 1,
    threads_per_process: int | None = None,
    num_workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    timeout_s: float | None = None,
    reuse_results: bool = True,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ImageClassificationEvaluator:
    """Create ``evaluator(encoding) -> top-1 accuracy %`` that trains with torchrun (the paper's helper).

    Args:
        dataset: a Hugging Face ``datasets`` name, a directory written by ``save_to_disk``, an
            image folder (``<split>/<class>/<image>``), or in-memory arrays
            ``(X_train, y_train, X_valid, y_valid)`` (see :func:`arrays_to_dataset`; written once to
            ``work_dir``, splits ``train`` and ``validation``). A local dataset runs fully offline.
        n_classes: classes of the dataset; a different label count is a :class:`DatasetError`.
        n_gpus: GPUs to train on (one process each, NCCL); 0 trains on CPU with gloo and
            ``n_cpu_processes`` processes.
        config_to_model_file: a .py file (or package directory, or dotted module name) defining
            ``encoding_to_net(encoding, n_classes) -> nn.Module``; e.g. ``examples/mobileone/space.py``.
        dataset_config: the dataset's configuration name on the hub, if it has several.
        eval_split: the split accuracy is measured on.
        reparam: call the network's ``reparameterize()`` (or its modules') before evaluation.
        epochs: training epochs; hi-fi and lo-fi evaluators differ only in this.
        batch_size: global batch size, split evenly over the processes.
        min_crop_scale: smallest area fraction of the random crop of training images (1: no random
            crop, for tiny images such as 8x8 digits); crop_pct: evaluation resizes the short side to
            ``image_size / crop_pct`` and takes the central square (1: the whole image).
        optimizer, lr, weight_decay, warmup_epochs, label_smoothing: SGD (Nesterov, lr 0.1 x batch/256,
            weight decay 1e-4) or AdamW (lr 1e-3 x batch/1024, weight decay 0.05); cosine schedule
            with ``warmup_epochs`` (default min(5, epochs // 10)) of linear warm-up; label smoothing.
        amp: mixed precision (bfloat16, or float16 with loss scaling) on GPU; ignored on CPU.
        seed, deterministic: seeds model init, shuffling and augmentation; deterministic cuDNN.
        max_train_samples, max_eval_samples: train/evaluate on a seeded random subset.
        work_dir: where run directories go (default ``./var/img-class-runs``).
        cuda_visible_devices: ``CUDA_VISIBLE_DEVICES`` of the training processes (default: inherited).
        threads_per_process: ``OMP_NUM_THREADS`` of each process (default: CPU cores / processes).
        num_workers: data-loader workers per process (default 0 on CPU, 4 per GPU process).
        cache_dir: Hugging Face datasets cache (default: ``HF_DATASETS_CACHE`` or ``work_dir/hf-cache``).
        offline: set the Hugging Face offline switches in the child (default: when ``dataset`` is local).
        timeout_s: stop a run after this long (it resumes from its checkpoint when called again).
        reuse_results: return a finished run's stored accuracy instead of training again.
        python: interpreter for torchrun (default: this one). env: the child's base environment
            (default: this process's).
    """
    if n_classes < 2:
        raise ValueError(f"n_classes is {n_classes}; image classification needs at least 2 classes")
    if n_gpus < 0:
        raise ValueError(f"n_gpus is {n_gpus}; use 0 for CPU training or the number of GPUs")
    if n_cpu_processes < 1:
        raise ValueError(f"n_cpu_processes is {n_cpu_processes}; torchrun needs at least one process")
    if epochs < 1 or batch_size < 1 or image_size < 8:
        raise ValueError(
            f"epochs={epochs}, batch_size={batch_size}, image_size={image_size}: use epochs >= 1, "
            "batch_size >= 1, image_size >= 8"
        )
    if not 0 < min_crop_scale <= 1 or not 0 < crop_pct <= 1:
        raise ValueError(f"min_crop_scale={min_crop_scale}, crop_pct={crop_pct}: both must be in (0, 1]")
    if optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer {optimizer!r} is not supported; use 'sgd' or 'adamw'")
    work_path = Path(work_dir) if work_dir is not None else Path.cwd() / "var" / "img-class-runs"
    work_path = work_path.expanduser().resolve()
    if isinstance(dataset, str | os.PathLike):
        dataset_str = os.fspath(dataset)
    elif isinstance(dataset, Sequence):
        work_path.mkdir(parents=True, exist_ok=True)
        dataset_str = str(arrays_to_dataset(dataset, n_classes, work_path / "in-memory-datasets"))
        train_split, eval_split = ARRAY_SPLITS
    else:
        raise TypeError(f"dataset is a {type(dataset).__name__}; give a dataset name, a folder or "
                        "(X_train, y_train, X_valid, y_valid) arrays")
    local_dataset = Path(dataset_str).expanduser()
    is_local = local_dataset.exists()
    if is_local:
        dataset_str = str(local_dataset.resolve())
    model_spec = os.fspath(config_to_model_file)
    model_path = Path(model_spec).expanduser()
    if model_path.exists():
        model_spec = str(model_path.resolve())
        model_digest = _file_digest(model_path.resolve())
    elif model_spec.endswith(".py") or os.sep in model_spec:
        raise FileNotFoundError(f"config_to_model_file {model_spec!r} does not exist")
    else:
        model_digest = f"module:{model_spec}"
    work_path.mkdir(parents=True, exist_ok=True)
    if cache_dir is None and not os.environ.get("HF_DATASETS_CACHE") and not (env or {}).get("HF_DATASETS_CACHE"):
        cache_dir = work_path / "hf-cache"
    config = TrainingConfig(
        encoding=[],
        n_classes=n_classes,
        dataset=dataset_str,
        model_file=model_spec,
        dataset_config=dataset_config,
        train_split=train_split,
        eval_split=eval_split,
        image_column=image_column,
        label_column=label_column,
        model_function=model_function,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        image_size=image_size,
        min_crop_scale=min_crop_scale,
        crop_pct=crop_pct,
        max_train_samples=max_train_samples,
        max_eval_samples=max_eval_samples,
        reparam=reparam,
        amp=amp,
        seed=seed,
        deterministic=deterministic,
        num_workers=(0 if n_gpus == 0 else 4) if num_workers is None else num_workers,
        use_gpu=n_gpus > 0,
        cache_dir=None if cache_dir is None else str(Path(cache_dir).expanduser().resolve()),
    )
    return ImageClassificationEvaluator(
        config,
        n_gpus=n_gpus,
        n_cpu_processes=n_cpu_processes,
        work_dir=work_path,
        cuda_visible_devices=cuda_visible_devices,
        offline=is_local if offline is None else offline,
        timeout_s=timeout_s,
        reuse_results=reuse_results,
        python=python or sys.executable,
        env=env,
        threads_per_process=threads_per_process,
        model_digest=model_digest,
    )
