"""Train one digits CNN on the fixed split for a number of epochs and measure valid/test accuracy (CPU)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .data import DigitsSplit, load_split
from .net import INPUT_SHAPE, encoding_to_net

BATCH_SIZE = 64
LEARNING_RATE = 3e-3


@dataclass(frozen=True)
class TrainResult:
    """One training run: accuracies in percent, parameters, forward FLOPs of one image, wall seconds."""

    valid_acc: float
    test_acc: float
    params: int
    flops: float
    wall_s: float


def count_flops(net: nn.Module) -> float:
    """Forward FLOPs of one ``1x8x8`` image as :class:`torch.utils.flop_counter.FlopCounterMode` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net.eval()(torch.zeros(1, *INPUT_SHAPE))
    return float(counter.get_total_flops())


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).double().mean()) * 100.0


def train_and_evaluate(
    encoding: Sequence[Any],
    epochs: int,
    seed: int,
    split: DigitsSplit | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = LEARNING_RATE,
) -> TrainResult:
    """Train ``encoding_to_net(encoding)`` for ``epochs`` epochs with Adam and a cosine schedule, seeded.

    ``seed`` fixes the initial weights and the minibatch order. The schedule spans exactly ``epochs``
    epochs, so a short run is its own run, not a prefix of a long one. Accuracy is measured once, at
    the end, on the validation and test parts of ``split`` (default :func:`load_split`). Runs on the
    CPU on the caller's torch threads.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    split = split if split is not None else load_split()
    x_train, y_train = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    x_valid, y_valid = torch.from_numpy(split.x_valid), torch.from_numpy(split.y_valid)
    x_test, y_test = torch.from_numpy(split.x_test), torch.from_numpy(split.y_test)
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = encoding_to_net(encoding, n_classes=10)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    steps_per_epoch = -(-len(x_train) // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for k in range(0, len(order), batch_size):
            batch = order[k : k + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
            scheduler.step()
    net.eval()
    valid_acc = _accuracy(net, x_valid, y_valid)
    test_acc = _accuracy(net, x_test, y_test)
    wall_s = time.perf_counter() - start
    return TrainResult(
        valid_acc=valid_acc,
        test_acc=test_acc,
        params=sum(p.numel() for p in net.parameters()),
        flops=count_flops(net),
        wall_s=wall_s,
    )
