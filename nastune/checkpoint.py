"""A fitted surrogate as one safetensors blob (weights plus its configuration as metadata), no pickle."""

from __future__ import annotations

import json
from pathlib import Path

from nastune.errors import NastuneError
from nastune.surrogate import DeepEnsemble

__all__ = ["load_surrogate", "surrogate_bytes"]


def surrogate_bytes(model: DeepEnsemble) -> bytes:
    """``model`` as safetensors bytes; its ``config()`` travels as the ``config`` metadata entry."""
    from safetensors.torch import save

    tensors = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    return save(tensors, metadata={"config": json.dumps(model.config())})


def load_surrogate(source: bytes | str | Path) -> DeepEnsemble:
    """The surrogate :func:`surrogate_bytes` wrote, from bytes or a file path.

    Raises:
        NastuneError: not a surrogate checkpoint (no ``config`` metadata, or unreadable).
    """
    from safetensors import safe_open
    from safetensors.torch import load

    try:
        if isinstance(source, bytes):
            header_len = int.from_bytes(source[:8], "little")
            metadata = json.loads(source[8:8 + header_len]).get("__metadata__") or {}
            tensors = load(source)
        else:
            with safe_open(str(source), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        config = json.loads(metadata["config"])
    except (KeyError, ValueError, OSError) as exc:
        raise NastuneError(f"not a nastune surrogate checkpoint: {exc}") from exc
    return DeepEnsemble.from_state(config, tensors)
