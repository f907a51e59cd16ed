"""The NAS-Bench-201 network in PyTorch (self-contained: this file is what a bundle carries as source).

Faithful to the benchmark's ``TinyNetwork`` / ``InferCell`` (xautodl): stem 3x3 conv + BN, three stages
of ``N`` cells with ``C``, ``2C``, ``4C`` channels separated by ResNet basic blocks with stride 2, then
BN + ReLU, global average pooling and a linear classifier. Every cell is a 4-node DAG; node ``i`` is the
sum of one operation per edge ``(i <- j)``, ``j < i``; the cell's output is node 3.

Encoding: a tuple of 6 ints, the operation of each edge in the order
``(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)``, with operation codes
``0=none, 1=skip_connect, 2=nor_conv_1x1, 3=nor_conv_3x3, 4=avg_pool_3x3`` — exactly the digits of the
benchmark's ``ops_code`` column.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (target node, source node) of each encoding position.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d (affine, tracked statistics), as in NAS-Bench-201."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero tensor of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(code: int, channels: int) -> nn.Module:
    """The module of operation ``code`` (see :data:`OPS`) on ``channels`` channels, stride 1."""
    if code == 0:
        return Zero()
    if code == 1:
        return nn.Identity()
    if code == 2:
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if code == 3:
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if code == 4:
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"operation code {code!r} is not one of 0..4 ({', '.join(OPS)})")


class Cell(nn.Module):
    """One NAS-Bench-201 cell: ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, encoding: Sequence[int], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(int(code), channels) for code in encoding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            total = None
            for edge, (to, source) in zip(self.edges, EDGES, strict=True):
                if to == target:
                    y = edge(nodes[source])
                    total = y if total is None else total + y
            nodes.append(total)  # type: ignore[arg-type]
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """The reduction block between stages: ``(B, C, H, W) -> (B, 2C, ceil(H/2), ceil(W/2))``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201 macro skeleton around one cell encoding: ``(B, 3, H, W) -> logits (B, n_classes)``."""

    def __init__(self, encoding: Sequence[int], n_classes: int = 10, channels: int = 16, cells_per_stage: int = 5):
        super().__init__()
        if len(encoding) != len(EDGES):
            raise ValueError(f"an NB201 encoding has {len(EDGES)} operation codes, got {len(encoding)}")
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(3):
            width = c * 2**stage
            if stage > 0:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers.extend(Cell(encoding, width) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))


def encoding_to_net(encoding: Sequence[int], n_classes: int = 10) -> nn.Module:
    """The NAS-Bench-201 network (C=16, N=5) of a 6-int cell encoding, with ``n_classes`` outputs."""
    return NB201Network(tuple(int(v) for v in encoding), n_classes=n_classes)
