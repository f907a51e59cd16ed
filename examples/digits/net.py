"""The digits CNN in PyTorch for 1x8x8 inputs (self-contained: this file is what a bundle carries as source).

Encoding: a 7-tuple of JSON scalars ``(n_blocks, width, kernel, activation, skip, pooling, norm)``:

* ``n_blocks`` (int, 1..4): conv blocks after the stem;
* ``width`` (int, 8/16/32): channels of the stem and of every block;
* ``kernel`` (int, 3/5): kernel size of every convolution ("same" padding);
* ``activation`` (str): ``"relu"``, ``"gelu"``, ``"tanh"`` or ``"sigmoid"``;
* ``skip`` (int, 0/1): 1 adds the block's input to its output (identity residual);
* ``pooling`` (str): ``"none"``, ``"max"`` or ``"avg"``, a 2x2 pooling after the stem (8x8 -> 4x4);
* ``norm`` (str): ``"none"`` or ``"batch"`` (BatchNorm2d after every convolution).

Layout: stem conv(1 -> width) + norm + act, pooling, ``n_blocks`` x [conv + norm + act (+ input)],
global average pooling, linear classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

ENCODING_FIELDS: tuple[str, ...] = ("n_blocks", "width", "kernel", "activation", "skip", "pooling", "norm")
N_BLOCKS_CHOICES: tuple[int, ...] = (1, 2, 3, 4)
WIDTH_CHOICES: tuple[int, ...] = (8, 16, 32)
KERNEL_CHOICES: tuple[int, ...] = (3, 5)
ACTIVATION_CHOICES: tuple[str, ...] = ("relu", "gelu", "tanh", "sigmoid")
SKIP_CHOICES: tuple[int, ...] = (0, 1)
POOLING_CHOICES: tuple[str, ...] = ("none", "max", "avg")
NORM_CHOICES: tuple[str, ...] = ("none", "batch")
CHOICES: tuple[tuple[Any, ...], ...] = (
    N_BLOCKS_CHOICES,
    WIDTH_CHOICES,
    KERNEL_CHOICES,
    ACTIVATION_CHOICES,
    SKIP_CHOICES,
    POOLING_CHOICES,
    NORM_CHOICES,
)
INPUT_SHAPE: tuple[int, int, int] = (1, 8, 8)

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def decode(encoding: Sequence[Any]) -> tuple[int, int, int, str, int, str, str]:
    """Validate a digits encoding and return it as a typed tuple; a bad position raises ``ValueError``."""
    if isinstance(encoding, str | bytes) or len(encoding) != len(ENCODING_FIELDS):
        raise ValueError(
            f"digits encoding {encoding!r} must have {len(ENCODING_FIELDS)} positions: " + ", ".join(ENCODING_FIELDS)
        )
    for field, value, choices in zip(ENCODING_FIELDS, encoding, CHOICES, strict=True):
        if isinstance(choices[0], str):
            ok = isinstance(value, str) and value in choices
        else:
            # bool is an int subclass: True must not pass for skip=1; 16.0 (from JSON/CSV) may pass for 16
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value in choices
        if not ok:
            raise ValueError(f"digits encoding position {field!r} is {value!r}, expected one of {choices}")
    n_blocks, width, kernel, activation, skip, pooling, norm = encoding
    return int(n_blocks), int(width), int(kernel), str(activation), int(skip), str(pooling), str(norm)


class ConvBlock(nn.Module):
    """conv (same padding) -> norm -> activation, plus the input when ``skip``: ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, activation: str, norm: str, skip: bool) -> None:
        super().__init__()
        if skip and c_in != c_out:
            raise ValueError(f"a skip block needs equal in/out channels, got {c_in} -> {c_out}")
        # a conv followed by BatchNorm needs no bias of its own
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=norm == "none")
        self.norm: nn.Module = nn.BatchNorm2d(c_out) if norm == "batch" else nn.Identity()
        self.act = _ACTIVATIONS[activation]()
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm(self.conv(x)))
        return out + x if self.skip else out


class DigitsCNN(nn.Module):
    """The CNN of one digits encoding: ``(B, in_channels, H, W) -> (B, n_classes)`` logits (the table: 1x8x8).

    Global average pooling makes it accept any image size; ``in_channels=3`` serves RGB pipelines such as
    the image-classification evaluator, which hands every image over as 3 channels.
    """

    def __init__(self, encoding: Sequence[Any], n_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        n_blocks, width, kernel, activation, skip, pooling, norm = decode(encoding)
        self.encoding = (n_blocks, width, kernel, activation, skip, pooling, norm)
        self.stem = ConvBlock(in_channels, width, kernel, activation, norm, skip=False)
        self.pool: nn.Module = {"none": nn.Identity(), "max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2)}[pooling]
        self.blocks = nn.Sequential(
            *(ConvBlock(width, width, kernel, activation, norm, skip=bool(skip)) for _ in range(n_blocks))
        )
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.pool(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def encoding_to_net(encoding: Sequence[Any], n_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """The digits CNN of ``encoding`` (see the module docstring) with ``n_classes`` outputs."""
    return DigitsCNN(encoding, n_classes=n_classes, in_channels=in_channels)
