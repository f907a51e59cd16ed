"""Fixtures shared by the engine tests: a tiny importable torch space written to a temporary module."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

#: Source of a tiny search space. Encodings are (width, depth, activation, behaviour):
#: behaviour "ok" builds the net, "raise" raises, "sleep" sleeps 30 s, "exit" kills the process.
TINY_SPACE_SOURCE = textwrap.dedent(
    '''
    """A tiny convolutional search space for tests (importable, so worker processes can use it)."""
    import os
    import time
    from pathlib import Path

    from torch import nn

    CALLS = os.environ.get("NASTUNE_TEST_CALLS")


    def encoding_to_net(encoding):
        width, depth, act, behaviour = encoding
        if CALLS:
            with open(CALLS, "a") as fh:
                fh.write(f"{width},{depth},{act},{behaviour}\\n")
        if behaviour == "raise":
            raise ValueError(f"cannot build width {width}")
        if behaviour == "sleep":
            time.sleep(30)
        if behaviour == "slow":
            time.sleep(0.25)
        if behaviour == "exit":
            os._exit(3)
        layers = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
        layers.append(nn.ReLU() if act == "relu" else nn.GELU())
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
        return nn.Sequential(*layers)


    def tiny_params(width, depth):
        """Hand count: convs (no bias), BN weight+bias, linear weight+bias."""
        return 3 * width * 9 + (depth - 1) * width * width * 9 + depth * 2 * width + width * 10 + 10


    def tiny_flops(width, depth, batch, side):
        """2 x multiply-adds of the convolutions and the linear layer."""
        conv = 2 * batch * width * side * side * (3 * 9 + (depth - 1) * width * 9)
        return conv + 2 * batch * width * 10
    '''
)


@pytest.fixture
def tiny_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The tiny space as a real module file on ``sys.path`` (a unique name per test)."""
    name = f"nastune_tiny_space_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text(TINY_SPACE_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


@pytest.fixture
def tiny_encodings() -> list[tuple]:
    """Twelve good encodings of the tiny space."""
    return [(w, d, a, "ok") for w in (2, 4, 8) for d in (1, 2) for a in ("relu", "gelu")]


@pytest.fixture
def make_tiny_space(tmp_path: Path, tiny_module: ModuleType, tiny_encodings: list[tuple]) -> Callable[..., object]:
    """``make_tiny_space(encodings=None, **kwargs)`` -> a SearchSpace saved under ``tmp_path``."""
    from nastune import create_search_space

    def make(encodings: list[tuple] | None = None, **kwargs: object) -> object:
        return create_search_space(
            "tiny", tmp_path / "tiny.nastune", encodings or tiny_encodings, tiny_module.encoding_to_net, **kwargs
        )

    return make


# --- E2: a small grid space with an analytic objective, for surrogate / search tests ---------------------------

#: Fast surrogate settings for tests (tiny net, few steps).
FAST_SURROGATE = {"hidden": 16, "pretrain_epochs": 3, "finetune_steps": 25, "pretrain_batch_size": 64}


@pytest.fixture
def make_grid_space(tmp_path: Path) -> Callable[..., object]:
    """``make_grid_space(n_positions=3, n_values=4, pretrained=True, seed=0)`` -> SearchSpace of all
    ``n_values ** n_positions`` integer tuples, profiled with two analytic metrics (``size``, heavy-tailed,
    and ``balance``) and, when ``pretrained``, a small pretrained surrogate."""
    import itertools

    import numpy as np

    from nastune import create_search_space

    def make(n_positions: int = 3, n_values: int = 4, pretrained: bool = True, seed: int = 0) -> object:
        encodings = list(itertools.product(range(n_values), repeat=n_positions))
        space = create_search_space("grid", tmp_path / "grid.nastune", encodings)
        m = np.asarray(encodings, dtype=np.float64)
        space.profile["size"] = np.exp(m.sum(1) / 2.0)
        space.profile["balance"] = -np.abs(m[:, 0] - m[:, 1])
        if pretrained:
            space.pretrain(seed=seed, progress=False, **FAST_SURROGATE)
        return space

    return make
