"""Training script behind ``create_img_class_evaluator``: one run, launched by ``torchrun``.

Usage (what the evaluator runs)::

    python -m torch.distributed.run --standalone --nproc-per-node N \
        -m nastune.evaluators._train_image_classifier RUN_DIR/config.json

It trains ``encoding_to_net(encoding, n_classes)`` with DDP (NCCL on GPUs, gloo on CPU),
checkpoints after every epoch (a killed run resumes from its last finished epoch),
optionally reparameterises the network, measures top-1 accuracy on the evaluation split and
writes ``result.json`` in the run directory. Everything the run needs is in ``config.json``
(:class:`TrainingConfig`), so a run can be repeated or resumed by hand with the same command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import math
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger("nastune")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_NAME = "checkpoint.pt"
RESULT_NAME = "result.json"
# Exit status of a run stopped on purpose by NASTUNE_TRAIN_STOP_AFTER_EPOCH (crash-recovery tests).
STOPPED_EXIT_CODE = 75
DATASET_EXIT_CODE = 3


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything one training run needs; written by the evaluator as ``config.json`` in the run directory."""

    encoding: list[Any]
    n_classes: int
    dataset: str
    model_file: str
    dataset_config: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    image_column: str | None = None
    label_column: str | None = None
    model_function: str = "encoding_to_net"
    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    warmup_epochs: int | None = None
    label_smoothing: float = 0.1
    image_size: int = 224
    crop_pct: float = 0.875
    min_crop_scale: float = 0.08
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    reparam: bool = True
    amp: bool = True
    seed: int = 0
    deterministic: bool = True
    num_workers: int = 0
    use_gpu: bool = False
    cache_dir: str | None = None
    grad_clip_norm: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainingConfig:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown training options {unknown}; known ones are {sorted(known)}")
        return cls(**data)

    def fingerprint(self) -> str:
        """Hash of the options that change what is trained (not of where or how fast it runs)."""
        data = dataclasses.asdict(self)
        for key in ("num_workers", "cache_dir"):
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class DatasetProblem(ValueError):
    """The dataset cannot serve this run: missing split, unknown columns, wrong label count."""


class StoppedOnPurpose(RuntimeError):
    """Raised after the epoch named by NASTUNE_TRAIN_STOP_AFTER_EPOCH, to exercise resuming."""


# ---------------------------------------------------------------------------------------------
# dataset


def is_saved_dataset(path: Path) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def load_splits(config: TrainingConfig) -> Any:
    """Load the dataset as a ``DatasetDict`` (a hub name, a ``save_to_disk`` directory or an image folder)."""
    import datasets

    path = Path(config.dataset).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DatasetProblem(f"dataset {config.dataset!r} is a file; pass a dataset directory or a hub name")
        if is_saved_dataset(path):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.Dataset):
                raise DatasetProblem(
                    f"{path} holds a single Dataset without splits; save a DatasetDict with "
                    f"'{config.train_split}' and '{config.eval_split}' splits"
                )
            return loaded
        return datasets.load_dataset("imagefolder", data_dir=str(path), cache_dir=config.cache_dir)
    return datasets.load_dataset(config.dataset, config.dataset_config, cache_dir=config.cache_dir)


def find_columns(split: Any, config: TrainingConfig) -> tuple[str, str, int]:
    """Image column, label column and number of classes of a split (ClassLabel names or distinct labels)."""
    import datasets

    features = split.features
    image_column = config.image_column or next(
        (name for name, feature in features.items() if isinstance(feature, datasets.Image)), None
    )
    if image_column is None or image_column not in features:
        raise DatasetProblem(
            f"no image column in {list(features)}; name it with image_column= (an Image feature is needed)"
        )
    label_column = config.label_column or next(
        (name for name, feature in features.items() if isinstance(feature, datasets.ClassLabel)), None
    )
    if label_column is None:
        label_column = next((name for name in ("label", "labels") if name in features), None)
    if label_column is None or label_column not in features:
        raise DatasetProblem(f"no label column in {list(features)}; name it with label_column=")
    feature = features[label_column]
    # A ClassLabel declares its classes; plain integer labels are counted.
    is_class_label = isinstance(feature, datasets.ClassLabel)
    n_labels = int(feature.num_classes) if is_class_label else len(set(split[label_column]))
    return image_column, label_column, n_labels


def subset_indices(length: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset of ``limit`` rows (all rows, in order, when ``limit`` is None)."""
    if limit is None or limit >= length:
        return np.arange(length)
    return np.sort(np.random.default_rng(seed).permutation(length)[:limit])


def _to_uint8_chw(image: Any) -> torch.Tensor:
    """A PIL image or an (H, W[, C]) array -> (3, H, W) uint8 tensor."""
    if hasattr(image, "convert"):
        array = np.array(image.convert("RGB"))  # a writable copy torch can share
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        if array.shape[2] == 1:
            array = np.repeat(array, 3, axis=2)
        array = array[:, :, :3]
        if array.dtype != np.uint8:
            scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
            array = np.clip(array * scale, 0, 255).astype(np.uint8)
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).permute(2, 0, 1)


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Antialiased bilinear resize: (3, H, W) uint8 -> (3, height, width) uint8."""
    resized = F.interpolate(
        image[None].float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)


def random_resized_crop(image: torch.Tensor, size: int, min_scale: float, generator: torch.Generator) -> torch.Tensor:
    """Inception-style crop (area scale in [min_scale, 1], aspect in [3/4, 4/3]) and horizontal flip.

    image: (3, H, W) uint8 -> (3, size, size) uint8
    """
    _, height, width = image.shape
    area = height * width
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (min_scale + (1.0 - min_scale) * u[0])
        aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(u[2] * (height - h + 1))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            crop = image[:, top : top + h, left : left + w]
            break
    else:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        crop = image[:, top : top + side, left : left + side]
    out = _resize(crop, size, size)
    if bool(torch.rand(1, generator=generator) < 0.5):
        out = out.flip(2)
    return out


def resize_center_crop(image: torch.Tensor, size: int, crop_pct: float) -> torch.Tensor:
    """Resize the short side to ``size / crop_pct`` and take the central ``size`` square.

    image: (3, H, W) uint8 -> (3, size, size) uint8
    """
    _, height, width = image.shape
    short = max(size, round(size / crop_pct))
    scale = short / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    resized = _resize(image, new_h, new_w)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[:, top : top + size, left : left + size]


class ImageSplit(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """Rows of a Hugging Face split as (image (3, size, size) uint8, label) pairs.

    Training augmentation draws from a generator seeded by (seed, epoch, row), so the same
    epoch sees the same crops whatever the number of loader workers and after a resume.
    """

    def __init__(
        self,
        split: Any,
        indices: np.ndarray,
        image_column: str,
        label_column: str,
        config: TrainingConfig,
        train: bool,
    ) -> None:
        self.split = split.select_columns([image_column, label_column])
        self.indices = indices
        self.image_column = image_column
        self.label_column = label_column
        self.config = config
        self.train = train
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int]:
        row_index = int(self.indices[position])
        row = self.split[row_index]
        image = _to_uint8_chw(row[self.image_column])
        size = self.config.image_size
        if self.train:
            generator = torch.Generator().manual_seed(
                (self.config.seed * 1_000_003 + self.epoch) * 10_000_019 + row_index
            )
            image = random_resized_crop(image, size, self.config.min_crop_scale, generator)
        else:
            image = resize_center_crop(image, size, self.config.crop_pct)
        return image, int(row[self.label_column])


# ---------------------------------------------------------------------------------------------
# model


def _module_name_for(path: Path) -> tuple[Path, str]:
    """(sys.path root, dotted module name) of a file or package directory inside packages."""
    parts = [path.stem if path.is_file() else path.name]
    parent = path.parent
    while (parent / "__init__.py").is_file():
        parts.append(parent.name)
        parent = parent.parent
    if path.is_file() and path.name == "__init__.py":
        parts = parts[1:]
    return parent, ".".join(reversed(parts))


def build_model(encoding_to_net: Any, encoding: tuple, n_classes: int) -> torch.nn.Module:
    """``encoding_to_net(encoding, n_classes)``, or ``encoding_to_net(encoding)`` for a builder that takes
    only the encoding (as profiling calls it); its output must then already have ``n_classes`` logits."""
    try:
        parameters = inspect.signature(encoding_to_net).parameters.values()
    except (TypeError, ValueError):  # builtins and some callables have no signature: pass both
        return encoding_to_net(encoding, n_classes)
    takes_two = any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters) or sum(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters) >= 2 or any(
        p.name == "n_classes" for p in parameters)
    return encoding_to_net(encoding, n_classes) if takes_two else encoding_to_net(encoding)


def load_model_function(model_file: str, function: str) -> Callable[..., nn.Module]:
    """Find ``function`` (e.g. ``encoding_to_net``) in a .py file, a package directory or a dotted module name.

    A file inside a package (``examples/mobileone/space.py``) is imported as a package module so
    its relative imports work.
    """
    path = Path(model_file).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_dir() and not (path / "__init__.py").is_file():
            raise ValueError(f"{path} is a directory without __init__.py; pass the .py file that defines {function}")
        in_package = (path.parent / "__init__.py").is_file() or path.is_dir()
        if in_package:
            root, name = _module_name_for(path)
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            module = importlib.import_module(name)
        else:
            spec = importlib.util.spec_from_file_location("nastune_user_model", path)
            if spec is None or spec.loader is None:
                raise ValueError(f"cannot import {path} as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(model_file)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ValueError(f"{model_file} defines no function {function!r}; define {function}(encoding, n_classes)")
    return fn


def reparameterize_for_inference(model: nn.Module) -> bool:
    """Call ``model.reparameterize()`` (or every submodule's) if the network has one; True if any ran."""
    fuse = getattr(model, "reparameterize", None)
    if callable(fuse):
        fuse()
        return True
    ran = False
    for module in list(model.modules()):
        fuse = getattr(module, "reparameterize", None)
        if module is not model and callable(fuse):
            fuse()
            ran = True
    return ran


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# training


@dataclasses.dataclass
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]


def setup_distributed(config: TrainingConfig) -> DistContext:
    """Initialise the process group from torchrun's environment (a single process works without torchrun)."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if config.use_gpu:
        if not torch.cuda.is_available():
            raise RuntimeError(
                "n_gpus > 0 but CUDA is not available in the training process "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
            )
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"process {local_rank} needs GPU {local_rank} but only {torch.cuda.device_count()} are visible; "
                "lower n_gpus or widen CUDA_VISIBLE_DEVICES"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if config.use_gpu else "gloo")
    return DistContext(rank, world_size, local_rank, device)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def learning_rate(config: TrainingConfig) -> float:
    """Base learning rate, scaled linearly with the global batch when not given."""
    if config.lr is not None:
        return config.lr
    global_batch = config.batch_size
    if config.optimizer == "adamw":
        return 1e-3 * global_batch / 1024
    return 0.1 * global_batch / 256


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW; no weight decay on biases and normalisation weights."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    lr = learning_rate(config)
    if config.optimizer == "adamw":
        weight_decay = 0.05 if config.weight_decay is None else config.weight_decay
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr)
    if config.optimizer != "sgd":
        raise ValueError(f"optimizer {config.optimizer!r} is not supported; use 'sgd' or 'adamw'")
    weight_decay = 1e-4 if config.weight_decay is None else config.weight_decay
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.momentum > 0)


def cosine_lr(base: float, step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up then cosine decay to 0, per optimisation step."""
    if warmup_steps > 0 and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _normalise(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (batch, 3, H, W) -> float32 (batch, 3, H, W), ImageNet mean/std normalised, on ``device``."""
    x = images.to(device, non_blocking=True).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def _autocast(config: TrainingConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda" and config.amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _batches(loader: torch.utils.data.DataLoader[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    yield from loader


def evaluate_accuracy(
    model: nn.Module, data: ImageSplit, ctx: DistContext, config: TrainingConfig
) -> tuple[float, int]:
    """Top-1 accuracy in % over the whole split, each process taking every ``world_size``-th row."""
    shard = torch.utils.data.Subset(data, list(range(ctx.rank, len(data), ctx.world_size)))
    loader = torch.utils.data.DataLoader(
        shard,
        batch_size=max(1, config.batch_size // ctx.world_size),
        shuffle=False,
        num_workers=config.num_workers,
        pin_memory=ctx.device.type == "cuda",
    )
    correct = 0
    seen = 0
    model.eval()
    with torch.no_grad(), _autocast(config, ctx.device):
        for images, labels in _batches(loader):
            logits = model(_normalise(images, ctx.device))
            correct += int((logits.argmax(dim=1).cpu() == labels).sum())
            seen += len(labels)
    total_correct, total_seen = ctx.all_reduce_sum([correct, seen])
    if total_seen == 0:
        raise DatasetProblem(f"evaluation split {config.eval_split!r} has no rows")
    return 100.0 * total_correct / total_seen, int(total_seen)


def _sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Give every process rank 0's BatchNorm statistics (the last step updated each process's own)."""
    if ctx.world_size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def train_and_evaluate(config: TrainingConfig, run_dir: Path, ctx: DistContext) -> dict[str, Any]:
    """Train for ``config.epochs`` epochs (resuming from the checkpoint if any), then evaluate."""
    started = time.monotonic()
    seed_everything(config.seed, config.deterministic)

    # Rank 0 prepares any cache first so the other processes only read it.
    if ctx.is_main:
        splits = load_splits(config)
    ctx.barrier()
    if not ctx.is_main:
        splits = load_splits(config)
    available = list(splits.keys())
    for role, name in (("training", config.train_split), ("evaluation", config.eval_split)):
        if name not in splits:
            raise DatasetProblem(f"dataset {config.dataset!r} has no {role} split {name!r}; its splits are {available}")
    image_column, label_column, n_labels = find_columns(splits[config.train_split], config)
    if n_labels != config.n_classes:
        raise DatasetProblem(
            f"dataset {config.dataset!r} has {n_labels} classes in column {label_column!r} "
            f"but n_classes={config.n_classes}; pass n_classes={n_labels}"
        )
    train_split, eval_split = splits[config.train_split], splits[config.eval_split]
    train_data = ImageSplit(
        train_split,
        subset_indices(len(train_split), config.max_train_samples, config.seed),
        image_column,
        label_column,
        config,
        train=True,
    )
    eval_data = ImageSplit(
        eval_split,
        subset_indices(len(eval_split), config.max_eval_samples, config.seed + 1),
        image_column,
        label_column,
        config,
        train=False,
    )

    encoding_to_net = load_model_function(config.model_file, config.model_function)
    model = build_model(encoding_to_net, tuple(config.encoding), config.n_classes).to(ctx.device)
    params_train = count_parameters(model)
    optimizer = make_optimizer(model, config)
    use_fp16_scaler = ctx.device.type == "cuda" and config.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16_scaler)

    checkpoint_path = run_dir / CHECKPOINT_NAME
    start_epoch = 0
    train_losses: list[float] = []
    fingerprint = config.fingerprint()
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=ctx.device, weights_only=True)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            start_epoch = int(state["epoch"])
            train_losses = [float(v) for v in state["train_losses"]]
            if ctx.is_main:
                logger.info("resuming from the checkpoint after epoch %d of %d", start_epoch, config.epochs)
        elif ctx.is_main:
            logger.warning("ignoring %s: it was written for different training options", checkpoint_path)

    ddp_model: nn.Module = model
    if ctx.world_size > 1:
        device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    per_process_batch = max(1, config.batch_size // ctx.world_size)
    sampler: torch.utils.data.DistributedSampler[tuple[torch.Tensor, int]] = torch.utils.data.DistributedSampler(
        train_data, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed
    )
    drop_last = len(sampler) >= per_process_batch
    steps_per_epoch = (len(sampler) // per_process_batch) if drop_last else math.ceil(len(sampler) / per_process_batch)
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup_epochs = min(5, config.epochs // 10) if config.warmup_epochs is None else config.warmup_epochs
    warmup_steps = warmup_epochs * steps_per_epoch
    base_lr = learning_rate(config)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    stop_after = os.environ.get("NASTUNE_TRAIN_STOP_AFTER_EPOCH")

    if ctx.is_main:
        logger.info(
            "training %s on %s: %d train / %d eval images, %d classes, %d epochs, %d process(es) on %s, %d parameters",
            config.encoding,
            config.dataset,
            len(train_data),
            len(eval_data),
            config.n_classes,
            config.epochs,
            ctx.world_size,
            ctx.device.type,
            params_train,
        )
    for epoch in range(start_epoch, config.epochs):
        epoch_started = time.monotonic()
        sampler.set_epoch(epoch)
        train_data.epoch = epoch
        loader = torch.utils.data.DataLoader(
            train_data,
            batch_size=per_process_batch,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=config.num_workers,
            pin_memory=ctx.device.type == "cuda",
        )
        ddp_model.train()
        loss_sum, loss_count = 0.0, 0
        for step_in_epoch, (images, labels) in enumerate(_batches(loader)):
            lr = cosine_lr(base_lr, epoch * steps_per_epoch + step_in_epoch, total_steps, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with _autocast(config, ctx.device):
                logits = ddp_model(_normalise(images, ctx.device))
                loss = criterion(logits.float(), labels.to(ctx.device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            loss_sum += float(loss.detach()) * len(labels)
            loss_count += len(labels)
        total_loss, total_count = ctx.all_reduce_sum([loss_sum, loss_count])
        mean_loss = total_loss / max(1.0, total_count)
        if not math.isfinite(mean_loss):
            raise RuntimeError(f"training diverged in epoch {epoch + 1}: mean loss {mean_loss}")
        train_losses.append(mean_loss)
        if ctx.is_main:
            _atomic_save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "train_losses": train_losses,
                    "fingerprint": fingerprint,
                },
                checkpoint_path,
            )
            elapsed = time.monotonic() - epoch_started
            logger.info(
                "epoch %d/%d: loss %.4f, lr %.5f, %.1f s, %.1f images/s",
                epoch + 1,
                config.epochs,
                mean_loss,
                optimizer.param_groups[0]["lr"],
                elapsed,
                total_count / max(elapsed, 1e-9),
            )
        ctx.barrier()
        if stop_after is not None and epoch + 1 == int(stop_after) and epoch + 1 < config.epochs:
            raise StoppedOnPurpose(f"stopped after epoch {epoch + 1} (NASTUNE_TRAIN_STOP_AFTER_EPOCH)")

    _sync_buffers(model, ctx)
    model.eval()
    reparameterized = reparameterize_for_inference(model) if config.reparam else False
    params_eval = count_parameters(model)
    accuracy, n_eval = evaluate_accuracy(model, eval_data, ctx, config)
    duration = time.monotonic() - started
    if ctx.is_main:
        logger.info(
            "accuracy %.2f%% on %d %s images (reparameterised: %s, %d -> %d parameters), %.1f s",
            accuracy,
            n_eval,
            config.eval_split,
            reparameterized,
            params_train,
            params_eval,
            duration,
        )
    return {
        "status": "ok",
        "accuracy": accuracy,
        "n_eval_images": n_eval,
        "n_train_images": len(train_data),
        "epochs": config.epochs,
        "resumed_from_epoch": start_epoch,
        "train_losses": train_losses,
        "reparameterized": reparameterized,
        "params_train": params_train,
        "params_eval": params_eval,
        "world_size": ctx.world_size,
        "device": ctx.device.type,
        "duration_s": duration,
        "fingerprint": fingerprint,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of one torchrun worker; rank 0 writes ``result.json`` beside the config file.

    torchrun reports any worker failure as its own exit status 1, so the outcome (``status``
    "ok", "error" with ``error_type`` "dataset" for dataset problems, or "stopped") is read from
    ``result.json``, not from the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m nastune.evaluators._train_image_classifier RUN_DIR/config.json\n")
        return 2
    config_path = Path(args[0]).resolve()
    run_dir = config_path.parent
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    exit_code = 0
    result: dict[str, Any] | None = None
    ctx: DistContext | None = None
    try:
        config = TrainingConfig.from_file(config_path)
        ctx = setup_distributed(config)
        result = train_and_evaluate(config, run_dir, ctx)
    except DatasetProblem as exc:
        logger.error("%s", exc)
        result = {"status": "error", "error_type": "dataset", "error": str(exc)}
        exit_code = DATASET_EXIT_CODE
    except StoppedOnPurpose as exc:
        logger.warning("%s", exc)
        result = {"status": "stopped", "error": str(exc)}
        exit_code = STOPPED_EXIT_CODE
    except Exception as exc:  # report any failure of user code or training in result.json
        logger.error("training failed:\n%s", traceback.format_exc())
        result = {"status": "error", "error_type": type(exc).__name__, "error": str(exc)}
        exit_code = 1
    # The result is written before the process group is torn down: gloo's teardown can abort the
    # process ("terminate called without an active exception") after the work is done.
    if rank == 0 and result is not None:
        _atomic_write_json(result, run_dir / RESULT_NAME)
    sys.stderr.flush()
    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
