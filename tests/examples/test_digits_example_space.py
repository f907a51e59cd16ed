"""The digits example space offered in NASWeb: its closed-form profile matches the networks its module builds."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from examples.digits import build_encodings
from spaces.examples import DIGITS_IN_CHANNELS, EXAMPLES


def _example_module() -> dict:
    namespace: dict = {}
    exec(EXAMPLES["digits"].module_source(), namespace)  # our own source, the one a worker runs
    return namespace


def test_digits_closed_form_profile_matches_the_built_networks() -> None:
    profile = EXAMPLES["digits"].profile_table()
    encodings = build_encodings()
    assert {name: len(values) for name, values in profile.items()} == {"params": 1152, "flops": 1152}
    encoding_to_net = _example_module()["encoding_to_net"]
    for index in np.random.default_rng(0).choice(len(encodings), 40, replace=False):
        net = encoding_to_net(encodings[index], 10)
        params = sum(p.numel() for p in net.parameters() if p.requires_grad)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net.eval()(torch.zeros(1, DIGITS_IN_CHANNELS, 8, 8))
        assert profile["params"][index] == params, encodings[index]
        assert profile["flops"][index] == counter.get_total_flops(), encodings[index]


def test_digits_example_networks_take_the_rgb_images_the_evaluator_hands_over() -> None:
    assert EXAMPLES["digits"].sample_input_shape == (1, 3, 8, 8)
    net = _example_module()["encoding_to_net"](build_encodings()[0], 10)
    assert net(torch.zeros(4, 3, 8, 8)).shape == (4, 10)
