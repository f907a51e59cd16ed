"""NAS-Bench-201 as a new user would upload it: op-name encodings and a plain ``encoding_to_net`` per dataset.

Nothing here knows about paths, isomorphisms or hand-made features: an encoding is the six edge operations
by name (``("nor_conv_3x3", "skip_connect", ...)``, edges in ``ops_code`` order), and the network is the
benchmark's own PyTorch network with the dataset's number of classes. This is the module source a bundle
carries, so it imports only torch and the example network.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from examples.nb201.net import OPS, NB201Network

N_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}


def op_name_encodings(codes: Sequence[Sequence[int]]) -> list[tuple[str, ...]]:
    """``(n, 6)`` operation codes -> ``n`` tuples of operation names, in the same order."""
    return [tuple(OPS[int(c)] for c in row) for row in codes]


def _net(encoding: Sequence[str], n_classes: int) -> nn.Module:
    return NB201Network(tuple(OPS.index(str(op)) for op in encoding), n_classes=n_classes)


def encoding_to_net_cifar10(encoding: Sequence[str]) -> nn.Module:
    """The NB201 network of an op-name encoding, 10 classes."""
    return _net(encoding, 10)


def encoding_to_net_cifar100(encoding: Sequence[str]) -> nn.Module:
    """The NB201 network of an op-name encoding, 100 classes."""
    return _net(encoding, 100)


def encoding_to_net_imagenet16(encoding: Sequence[str]) -> nn.Module:
    """The NB201 network of an op-name encoding, 120 classes."""
    return _net(encoding, 120)


ENCODING_TO_NET = {
    "cifar10": encoding_to_net_cifar10,
    "cifar100": encoding_to_net_cifar100,
    "imagenet16": encoding_to_net_imagenet16,
}
