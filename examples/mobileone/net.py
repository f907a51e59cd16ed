"""MobileOne blocks and network (Vasu et al., CVPR 2023): train-time branches and their reparameterisation.

A :class:`MobileOneBlock` is one convolution layer. At train time it sums ``n_branches``
parallel conv+BN branches, a 1x1 conv+BN "scale" branch (when the kernel is larger than
1x1) and a BN-only identity branch (when input and output shapes agree). Because every
branch is linear, :meth:`MobileOneBlock.reparameterize` folds them into one plain conv
with a bias, which is what runs at inference time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MobileOne", "MobileOneBlock", "SqueezeExcite", "reference_stage_plan", "reparameterize"]

# Channel reduction of the squeeze-and-excitation bottleneck, as in the reference MobileOne.
SE_REDUCTION = 16


def se_hidden_channels(channels: int) -> int:
    """Width of the squeeze-and-excitation bottleneck for ``channels`` channels."""
    return max(1, channels // SE_REDUCTION)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gate (Hu et al., 2018): per-channel scaling from global context.

    x: (batch, channels, H, W) -> (batch, channels, H, W)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = se_hidden_channels(channels)
        self.reduce = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x.mean(dim=(2, 3), keepdim=True)  # (batch, channels, 1, 1)
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(context))))
        return x * gate


class ConvBN(nn.Module):
    """A bias-free convolution followed by batch norm; one linear branch of a MobileOne block.

    x: (batch, in_channels, H, W) -> (batch, out_channels, H / stride, W / stride)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode batch norm into the preceding bias-free conv.

    kernel: (out, in / groups, k, k) -> kernel (out, in / groups, k, k), bias (out,)
    """
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("cannot reparameterise a BatchNorm2d built with track_running_stats=False")
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return kernel * scale.reshape(-1, 1, 1, 1), beta - bn.running_mean * scale


class MobileOneBlock(nn.Module):
    """One MobileOne layer: k x k conv (depthwise when ``groups == in_channels``), optional SE, ReLU.

    Train-time form: ``n_branches`` conv+BN branches + a 1x1 conv+BN scale branch (``kernel_size > 1``)
    + a BN identity branch (``in_channels == out_channels`` and ``stride == 1``), summed, then SE
    and ReLU. After :meth:`reparameterize` the branches are one conv with bias.

    x: (batch, in_channels, H, W) -> (batch, out_channels, ceil(H / stride), ceil(W / stride))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        n_branches: int = 1,
        use_se: bool = False,
    ) -> None:
        super().__init__()
        if n_branches < 1:
            raise ValueError(f"n_branches is {n_branches}; a MobileOne block needs at least one conv branch")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size is {kernel_size}; MobileOne blocks use odd kernels (1 or 3)")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups
        self.branches = nn.ModuleList(
            ConvBN(in_channels, out_channels, kernel_size, stride, groups) for _ in range(n_branches)
        )
        self.scale: ConvBN | None = ConvBN(in_channels, out_channels, 1, stride, groups) if kernel_size > 1 else None
        self.identity: nn.BatchNorm2d | None = (
            nn.BatchNorm2d(in_channels) if in_channels == out_channels and stride == 1 else None
        )
        self.se: SqueezeExcite | None = SqueezeExcite(out_channels) if use_se else None
        self.fused: nn.Conv2d | None = None

    @property
    def is_fused(self) -> bool:
        """True once :meth:`reparameterize` has replaced the branches by one conv."""
        return self.fused is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            out = self.fused(x)
        else:
            out = self.branches[0](x)
            for branch in self.branches[1:]:
                out = out + branch(x)
            if self.scale is not None:
                out = out + self.scale(x)
            if self.identity is not None:
                out = out + self.identity(x)
        if self.se is not None:
            out = self.se(out)
        return F.relu(out)

    def _identity_kernel(self, like: torch.Tensor) -> torch.Tensor:
        """Kernel of the identity map in this block's conv shape: (out, in / groups, k, k)."""
        in_per_group = self.in_channels // self.groups
        kernel = torch.zeros(
            self.in_channels,
            in_per_group,
            self.kernel_size,
            self.kernel_size,
            dtype=like.dtype,
            device=like.device,
        )
        centre = self.kernel_size // 2
        channels = torch.arange(self.in_channels, device=like.device)
        kernel[channels, channels % in_per_group, centre, centre] = 1.0
        return kernel

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single conv equivalent to all branches in eval mode.

        -> kernel (out_channels, in_channels / groups, k, k), bias (out_channels,)
        """
        if self.fused is not None:
            bias = self.fused.bias
            if bias is None:
                raise RuntimeError("fused conv lost its bias")
            return self.fused.weight.detach().clone(), bias.detach().clone()
        branches = cast(list[ConvBN], list(self.branches))
        kernel = torch.zeros_like(branches[0].conv.weight)
        bias = torch.zeros(self.out_channels, dtype=kernel.dtype, device=kernel.device)
        for branch in branches:
            k, b = _fold_bn(branch.conv.weight, branch.bn)
            kernel += k
            bias += b
        if self.scale is not None:
            k, b = _fold_bn(self.scale.conv.weight, self.scale.bn)
            pad = self.kernel_size // 2
            kernel += F.pad(k, [pad, pad, pad, pad])
            bias += b
        if self.identity is not None:
            k, b = _fold_bn(self._identity_kernel(kernel), self.identity)
            kernel += k
            bias += b
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the train-time branches by one conv with bias (in place, idempotent).

        The result equals the eval-mode output of the train-time block; train-mode batch
        statistics are no longer used afterwards.
        """
        if self.fused is not None:
            return
        reference = cast(ConvBN, self.branches[0]).conv.weight
        if reference.is_meta:
            # Shape-only networks (parameter and FLOP counting) need no fused values.
            self.fused = self._fused_conv(reference.device, reference.dtype)
        else:
            kernel, bias = self.fused_kernel_bias()
            fused = self._fused_conv(kernel.device, kernel.dtype)
            fused.weight.copy_(kernel)
            if fused.bias is not None:
                fused.bias.copy_(bias)
            self.fused = fused
        self.branches = nn.ModuleList()
        self.scale = None
        self.identity = None

    def _fused_conv(self, device: torch.device, dtype: torch.dtype) -> nn.Conv2d:
        """The inference conv: (batch, in, H, W) -> (batch, out, H / stride, W / stride), with bias."""
        return nn.Conv2d(
            self.in_channels,
            self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.kernel_size // 2,
            groups=self.groups,
            bias=True,
            device=device,
            dtype=dtype,
        )


def reparameterize(model: nn.Module) -> nn.Module:
    """Fuse every :class:`MobileOneBlock` (and anything else with a ``reparameterize()`` method) in place.

    Returns ``model`` for chaining. Call it on a model in eval mode before measuring inference.
    """
    for module in list(model.modules()):
        if module is model:
            continue
        fuse = getattr(module, "reparameterize", None)
        if callable(fuse):
            fuse()
    return model


def reference_stage_plan(depths: Sequence[int], use_se: bool) -> tuple[list[int], list[int]]:
    """Block pairs and trailing SE pairs per stage, laid out as the reference MobileOne code does.

    The reference builds a stage of nominal depth ``d`` with strides ``[2] + [1] * (d - 1)`` and
    gives SE to pair ``i`` when ``i >= d - n_se``, where ``n_se`` is ``d // 2`` for stage 3 and ``d``
    for stage 4 when SE is on (0 otherwise). For ``d = 0`` that yields one stride-2 pair, with SE.
    Reproducing this exactly is what recovers the paper's space size (see ``README.md``).

    -> (pairs per stage, SE pairs per stage), each of length 4
    """
    if len(depths) != 4:
        raise ValueError(f"expected 4 stage depths, got {len(depths)}")
    n_se = [0, 0, depths[2] // 2 if use_se else 0, depths[3] if use_se else 0]
    pairs = [max(1, d) for d in depths]
    se_pairs = [p - min(p, max(0, d - s)) for p, d, s in zip(pairs, depths, n_se, strict=True)]
    return pairs, se_pairs


class MobileOne(nn.Module):
    """MobileOne: a stride-2 stem, four stages of depthwise + pointwise block pairs, a linear head.

    Each unit of stage depth is a pair of blocks: a 3x3 depthwise :class:`MobileOneBlock`
    (stride 2 for the stage's first pair) and a 1x1 pointwise one that sets the stage width.
    ``se_pairs[i]`` trailing pairs of stage ``i`` use squeeze-and-excitation in both blocks.
    The defaults are MobileOne-s0. A stage of 0 pairs is skipped.

    x: (batch, 3, H, W) -> logits (batch, n_classes)
    """

    def __init__(
        self,
        depths: Sequence[int] = (2, 8, 10, 1),
        width_multipliers: Sequence[float] = (0.75, 1.0, 1.0, 2.0),
        *,
        se_pairs: Sequence[int] = (0, 0, 0, 0),
        n_branches: int = 4,
        n_classes: int = 1000,
        base_widths: Sequence[int] = (64, 128, 256, 512),
        stem_cap: int = 64,
    ) -> None:
        super().__init__()
        if not len(depths) == len(width_multipliers) == len(base_widths) == len(se_pairs) == 4:
            raise ValueError("MobileOne takes exactly 4 stage depths, width multipliers, base widths, SE counts")
        widths = [int(base * mult) for base, mult in zip(base_widths, width_multipliers, strict=True)]
        channels = min(stem_cap, widths[0])
        self.stem = MobileOneBlock(3, channels, 3, stride=2, n_branches=1)
        stages: list[nn.Sequential] = []
        for depth, width, n_se in zip(depths, widths, se_pairs, strict=True):
            blocks: list[nn.Module] = []
            for pair in range(depth):
                se = pair >= depth - n_se
                stride = 2 if pair == 0 else 1
                blocks.append(
                    MobileOneBlock(
                        channels,
                        channels,
                        3,
                        stride=stride,
                        groups=channels,
                        n_branches=n_branches,
                        use_se=se,
                    )
                )
                blocks.append(MobileOneBlock(channels, width, 1, n_branches=n_branches, use_se=se))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = channels
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))

    def reparameterize(self) -> MobileOne:
        """Fuse every block into a single conv, in place; returns ``self``."""
        reparameterize(self)
        return self
