"""End to end on real data: a pretrained nastune search on a NAS-Bench-201 subset beats random search."""

from __future__ import annotations

import numpy as np
import pytest

from examples import nb201
from nastune import SearchInstance, create_search_space
from nastune.baselines import RandomSearch, encoding_codes, run_strategy
from nastune.evaluators.tabular import TabularEvaluator

SUBSET = 1500
BUDGET = 20
SEEDS = range(4)


@pytest.fixture(scope="module")
def subset_space(tmp_path_factory: pytest.TempPathFactory):
    table = nb201.load_table()  # shipped with the project: a missing table fails, it does not skip
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(table.encodings), SUBSET, replace=False))
    encodings = table.encodings[keep]
    space = create_search_space("nb201-subset", tmp_path_factory.mktemp("nb201") / "s.nastune",
                                [tuple(int(v) for v in e) for e in encodings], features=nb201.features)
    space.preprocess(
        pretraining_data={
            "params": nb201.count_params_matrix(encodings).astype(float),
            "flops": nb201.count_flops_matrix(encodings).astype(float),
        },
        progress=False, save=False,
        surrogate_options={"hidden": 32, "pretrain_epochs": 10, "finetune_steps": 60},
    )
    return space, table.valid_acc["cifar10"][keep]


def test_nastune_beats_random_search_on_average_over_seeds(subset_space) -> None:
    space, valid = subset_space
    optimum = float(valid.max())
    ours, rand = [], []
    for seed in SEEDS:
        s = SearchInstance("nb201", None, search_space=space, seed=seed, progress=False, n_initial=5,
                           hi_fi_eval=TabularEvaluator(valid, space.index_of),
                           surrogate_options={"objective_transform": "rank"})
        best = s.run_search(BUDGET)
        assert best is not None and len(s.history) == BUDGET
        ours.append(optimum - best[1])
        history = run_strategy(RandomSearch(encoding_codes(space), seed), lambda i: float(valid[i]), BUDGET)
        rand.append(optimum - max(v for _, v in history if v is not None))
    assert np.mean(ours) < np.mean(rand), (ours, rand)
