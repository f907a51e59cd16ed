"""SwiftFormer building blocks (Shaker et al., ICCV 2023) and the MobileOne-SwiftFormer hybrid network.

SwiftFormer's efficient additive attention replaces the query-key matrix product by a
learned global query (a weighted sum of the queries) multiplied element-wise with every
key, so its cost is linear in the number of tokens. A stage of the hybrid is a run of
convolution blocks (SwiftFormer's conv encoder, or a MobileOne depthwise + pointwise pair,
optionally with SE) whose last 0, 1, 2 or all blocks are attention blocks: a mini
convolution block of the stage's type, then additive attention and an MLP, each residual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from examples.mobileone.net import MobileOneBlock, reparameterize

__all__ = [
    "MOBILEONE_S0_SKELETON",
    "SKELETONS",
    "SWIFTFORMER_XS_SKELETON",
    "ConvEncoder",
    "EfficientAdditiveAttention",
    "HybridNet",
    "Skeleton",
    "StageSpec",
    "SwiftFormerEncoder",
]

ConvType = Literal["conv-enc", "mo", "mo-se"]
MLP_RATIO = 4
LAYER_SCALE_INIT = 1e-5


@dataclass(frozen=True)
class Skeleton:
    """The macro layout the stage choices are placed in.

    ``stem="swiftformer"``: two stride-2 3x3 conv+BN+ReLU layers (input / 4), stage 1 keeps that
    resolution and later stages halve it; ``head_norm``: a BatchNorm before global pooling.
    ``stem="mobileone"``: one stride-2 MobileOne block (input / 2), every stage halves the resolution.
    """

    name: str
    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]
    stem: Literal["swiftformer", "mobileone"]
    head_norm: bool


SWIFTFORMER_XS_SKELETON = Skeleton("swiftformer-xs", (3, 3, 6, 4), (48, 56, 112, 220), "swiftformer", True)
MOBILEONE_S0_SKELETON = Skeleton("mobileone-s0", (2, 8, 10, 1), (48, 128, 256, 1024), "mobileone", False)
SKELETONS: dict[str, Skeleton] = {s.name: s for s in (SWIFTFORMER_XS_SKELETON, MOBILEONE_S0_SKELETON)}


@dataclass(frozen=True)
class StageSpec:
    """One stage of the hybrid: block type and how many of its last blocks are attention blocks."""

    conv: ConvType
    n_attention: int


def _init_swiftformer_weights(module: nn.Module) -> None:
    """SwiftFormer's initialisation: truncated normal (std 0.02) weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Downsample(nn.Module):
    """SwiftFormer's patch embedding between stages: a strided 3x3 conv and BatchNorm.

    x: (batch, in_channels, H, W) -> (batch, out_channels, ceil(H / stride), ceil(W / stride))
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        _init_swiftformer_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ConvEncoder(nn.Module):
    """SwiftFormer's conv encoder: depthwise 3x3, BN, 1x1 expansion, GELU, 1x1 projection, scaled residual.

    With ``hidden_channels == channels`` it is the "local representation" (mini conv block)
    that precedes attention in SwiftFormer's encoder block.

    x: (batch, channels, H, W) -> (batch, channels, H, W)
    """

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)
        self.norm = nn.BatchNorm2d(channels)
        self.expand = nn.Conv2d(channels, hidden_channels, kernel_size=1)
        self.project = nn.Conv2d(hidden_channels, channels, kernel_size=1)
        self.layer_scale = nn.Parameter(torch.ones(channels, 1, 1))
        _init_swiftformer_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(F.gelu(self.expand(self.norm(self.depthwise(x)))))
        return x + self.layer_scale * y


class EfficientAdditiveAttention(nn.Module):
    """Efficient additive attention (single head), linear in the number of tokens.

    Queries and keys are L2-normalised per token; a learned vector ``w_g`` scores each query,
    the scores (normalised over tokens) pool the queries into one global query ``g``, and the
    output is ``final(proj(g * keys) + queries)``.

    x: (batch, tokens, channels) -> (batch, tokens, channels)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.to_query = nn.Linear(channels, channels)
        self.to_key = nn.Linear(channels, channels)
        self.w_g = nn.Parameter(torch.randn(channels, 1))
        self.scale = channels**-0.5
        self.proj = nn.Linear(channels, channels)
        self.final = nn.Linear(channels, channels)
        _init_swiftformer_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = F.normalize(self.to_query(x), dim=-1)  # (batch, tokens, channels)
        key = F.normalize(self.to_key(x), dim=-1)  # (batch, tokens, channels)
        scores = F.normalize((query @ self.w_g) * self.scale, dim=1)  # (batch, tokens, 1)
        global_query = (scores * query).sum(dim=1, keepdim=True)  # (batch, 1, channels)
        return self.final(self.proj(global_query * key) + query)


class Mlp(nn.Module):
    """SwiftFormer's channel MLP: BN, 1x1 expansion, GELU, 1x1 projection.

    x: (batch, channels, H, W) -> (batch, channels, H, W)
    """

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.expand = nn.Conv2d(channels, hidden_channels, kernel_size=1)
        self.project = nn.Conv2d(hidden_channels, channels, kernel_size=1)
        _init_swiftformer_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(F.gelu(self.expand(self.norm(x))))


class SwiftFormerEncoder(nn.Module):
    """Attention block: a mini conv block (``local``), then additive attention and an MLP, each with a
    layer-scaled residual.

    ``local`` may change resolution and width (a stride-2 MobileOne pair as a stage's first block);
    attention and MLP then run at ``channels``.

    x: (batch, C_in, H, W) -> (batch, channels, H', W')
    """

    def __init__(self, local: nn.Module, channels: int) -> None:
        super().__init__()
        self.local = local
        self.attention = EfficientAdditiveAttention(channels)
        self.mlp = Mlp(channels, MLP_RATIO * channels)
        self.layer_scale_attention = nn.Parameter(torch.full((channels, 1, 1), LAYER_SCALE_INIT))
        self.layer_scale_mlp = nn.Parameter(torch.full((channels, 1, 1), LAYER_SCALE_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.local(x)
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (batch, H * W, channels)
        attended = self.attention(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        x = x + self.layer_scale_attention * attended
        return x + self.layer_scale_mlp * self.mlp(x)


def _mobileone_pair(
    in_channels: int, out_channels: int, stride: int, *, n_branches: int, use_se: bool
) -> nn.Sequential:
    """MobileOne depthwise 3x3 block, then pointwise 1x1: (batch, in, H, W) -> (batch, out, H/s, W/s)."""
    return nn.Sequential(
        MobileOneBlock(
            in_channels,
            in_channels,
            3,
            stride=stride,
            groups=in_channels,
            n_branches=n_branches,
            use_se=use_se,
        ),
        MobileOneBlock(in_channels, out_channels, 1, n_branches=n_branches, use_se=use_se),
    )


def build_stage(
    spec: StageSpec, in_channels: int, channels: int, depth: int, stride: int, *, n_branches: int
) -> nn.Sequential:
    """The blocks of one stage: ``depth`` blocks, the last ``min(spec.n_attention, depth)`` of them attention.

    conv-enc stages change resolution/width with SwiftFormer's downsampling embedding first;
    MobileOne stages do it in their first block pair, as MobileOne does.

    x: (batch, in_channels, H, W) -> (batch, channels, H / stride, W / stride)
    """
    n_attention = min(spec.n_attention, depth)
    blocks: list[nn.Module] = []
    current = in_channels
    if spec.conv == "conv-enc" and (stride > 1 or in_channels != channels):
        blocks.append(Downsample(in_channels, channels, stride))
        current, stride = channels, 1
    for index in range(depth):
        is_attention = index >= depth - n_attention
        block_stride = stride if index == 0 else 1
        local: nn.Module
        if spec.conv == "conv-enc":
            local = ConvEncoder(channels, channels if is_attention else MLP_RATIO * channels)
        else:
            local = _mobileone_pair(current, channels, block_stride, n_branches=n_branches, use_se=spec.conv == "mo-se")
        blocks.append(SwiftFormerEncoder(local, channels) if is_attention else local)
        current = channels
    return nn.Sequential(*blocks)


class HybridNet(nn.Module):
    """MobileOne-SwiftFormer hybrid: stem, four stages built from :class:`StageSpec`, pooling, linear head.

    x: (batch, 3, H, W) -> logits (batch, n_classes)
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        *,
        skeleton: Skeleton = SWIFTFORMER_XS_SKELETON,
        n_classes: int = 1000,
        n_branches: int = 4,
    ) -> None:
        super().__init__()
        if len(stages) != 4:
            raise ValueError(f"HybridNet takes 4 stage specs, got {len(stages)}")
        widths = skeleton.widths
        self.stem: nn.Module
        if skeleton.stem == "swiftformer":
            half = widths[0] // 2
            self.stem = nn.Sequential(
                nn.Conv2d(3, half, kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(half),
                nn.ReLU(),
                nn.Conv2d(half, widths[0], kernel_size=3, stride=2, padding=1),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(),
            )
            _init_swiftformer_weights(self.stem)
            channels, strides = widths[0], (1, 2, 2, 2)
        else:
            channels, strides = min(64, widths[0]), (2, 2, 2, 2)
            self.stem = MobileOneBlock(3, channels, 3, stride=2, n_branches=1)
        built = []
        for spec, width, depth, stride in zip(stages, widths, skeleton.depths, strides, strict=True):
            built.append(build_stage(spec, channels, width, depth, stride, n_branches=n_branches))
            channels = width
        self.stages = nn.ModuleList(built)
        self.norm: nn.Module = nn.BatchNorm2d(channels) if skeleton.head_norm else nn.Identity()
        self.head = nn.Linear(channels, n_classes)
        if skeleton.head_norm:
            _init_swiftformer_weights(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.norm(x).mean(dim=(2, 3)))

    def reparameterize(self) -> HybridNet:
        """Fuse every MobileOne block into a single conv, in place; returns ``self``."""
        reparameterize(self)
        return self
