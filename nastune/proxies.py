"""Training-free accuracy proxies computed at initialisation: NASWOT (log|K_H|) and synflow.

Both take a freshly built (seeded) network and the sample input; neither trains anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nastune.errors import ProfilingError

__all__ = ["log_synflow_score", "naswot_score"]

_aten = torch.ops.aten
# Activations whose "on/off" pattern (pre-activation > 0) forms the NASWOT binary code. Mellor et al.
# define it for ReLU; for smooth relatives (GELU, SiLU, hardswish) the sign of the pre-activation is the
# natural analogue, so networks without ReLU still get a score.
_ACTIVATIONS = {
    _aten.relu.default,
    _aten.relu_.default,
    _aten.hardtanh.default,
    _aten.hardtanh_.default,
    _aten.leaky_relu.default,
    _aten.leaky_relu_.default,
    _aten.gelu.default,
    _aten.gelu_.default,
    _aten.silu.default,
    _aten.silu_.default,
    _aten.hardswish.default,
    _aten.hardswish_.default,
}


class _ActivationCodes(TorchDispatchMode):
    """Accumulates ``K_H = C C^T + (1-C)(1-C)^T`` over every activation call (read before in-place ops)."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.kernel = torch.zeros(batch, batch, dtype=torch.float64)
        self.calls = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        if func in _ACTIVATIONS:
            x = args[0]
            if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] == self.batch:
                codes = (x.detach().reshape(self.batch, -1) > 0).to(torch.float64)
                self.kernel += codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T
                self.calls += 1
        return func(*args, **(kwargs or {}))


def naswot_score(net: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """NASWOT score of Mellor et al. (2021): ``log|det K_H|`` of the activation-pattern kernel.

    Args:
        net: an untrained network (its weights as initialised; the caller seeds the initialisation).
        inputs: the forward arguments; the first dimension of the first is the batch ``B`` (needs ``B >= 2``).

    Returns:
        ``log|K_H|`` where ``K_H[i, j]`` counts the activation units on which samples ``i`` and ``j``
        agree (both on or both off), summed over every activation call in one forward pass.
    """
    batch = int(inputs[0].shape[0])
    if batch < 2:
        raise ProfilingError("NASWOT needs a sample_input batch of at least 2 (Mellor et al. use 128)")
    net.train()
    mode = _ActivationCodes(batch)
    with torch.no_grad(), mode:
        net(*inputs)
    if mode.calls == 0:
        raise ProfilingError("NASWOT found no ReLU-like activation in the network")
    sign, logdet = torch.linalg.slogdet(mode.kernel)
    value = float(logdet)
    if float(sign) == 0.0 or not math.isfinite(value):
        raise ProfilingError("NASWOT kernel is singular (samples with identical activation patterns)")
    return value


def log_synflow_score(net: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """Natural log of the synflow score of Tanaka et al. (2020), as used by zero-cost NAS.

    Parameters are replaced by their absolute values, the network runs in float64 and eval mode
    (batch-norm with its initial running statistics) on an all-ones input of batch 1, and the score is
    ``sum |theta * d(sum output)/d theta|``. The network is modified (use a throw-away copy).

    Returns:
        ``log(synflow)``; synflow spans many orders of magnitude, so the log is what ranks and regresses well.
    """
    net.eval()
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = [torch.ones((1, *x.shape[1:]), dtype=torch.float64) if x.is_floating_point() else x[:1] for x in inputs]
    with torch.enable_grad():
        out = net(*ones)
        leaves = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not leaves:
            raise ProfilingError("synflow needs a floating-point network output")
        total = sum(t.sum() for t in leaves)
        if not isinstance(total, torch.Tensor) or not total.requires_grad:
            raise ProfilingError("synflow found no trainable parameter on the output's path")
        total.backward()
    score = 0.0
    for p in net.parameters():
        if p.grad is not None:
            score += float((p.detach() * p.grad).abs().sum())
    if not score > 0 or not math.isfinite(score):
        raise ProfilingError(f"synflow score is {score}; its log is undefined")
    return math.log(score)
