"""The tiny search space of the API tests: 24 encodings (width x depth x activation) and known values."""

from __future__ import annotations

TINY_ENCODINGS = [[w, d, a] for w in (4, 8, 13, 16) for d in (1, 2, 3) for a in ("relu", "tanh")]
MODULE = "import torch\n\n\ndef encoding_to_net(encoding):\n    return torch.nn.Identity()\n"


def tiny_value(index: int, fidelity: str = "hi") -> float:
    """The tabular evaluator's value of a tiny-space candidate (distinct for every index)."""
    width, depth, activation = TINY_ENCODINGS[index]
    return round(width * 0.1 + depth + (1.0 if activation == "relu" else 0.0) - (0.5 if fidelity == "lo" else 0.0)
                 + index * 1e-3, 6)


def tiny_params(index: int) -> float:
    width, depth, _ = TINY_ENCODINGS[index]
    return float(3 * width * 9 + width + (depth - 1) * (width * width * 9 + width) + width * 10 + 10)
