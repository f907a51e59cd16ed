"""Evaluators: what a search calls to measure one candidate at one fidelity.

The contract (duck-typed; any callable fits)::

    evaluator(encoding: tuple) -> float

* ``encoding`` is the candidate's encoding, a tuple of JSON scalars exactly as stored in the space.
* The return value is the objective, **maximised** (return ``-loss`` to minimise a loss). It must be a
  finite float.
* Raising any ``Exception`` marks the evaluation failed; the search records the message and goes on
  (it never proposes the same candidate at the same fidelity again).
* An evaluator should be deterministic for a given encoding if reproducible histories are wanted.
* Optional attribute ``cost_of(encoding) -> float``: the cost actually spent (else the fidelity's cost).

A search takes a high-fidelity evaluator (``hi_fi_eval``, e.g. 240 training epochs) and optionally a
low-fidelity one (``lo_fi_eval``, e.g. 12 epochs). Implementations here:

* :class:`~nastune.evaluators.tabular.TabularEvaluator`: looks values up in a table (benchmarks, demos).
* :func:`~nastune.evaluators.image_classification.create_img_class_evaluator`: trains with torchrun.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Evaluator"]


@runtime_checkable
class Evaluator(Protocol):
    """``evaluator(encoding) -> float`` (maximised); raising marks the evaluation failed."""

    def __call__(self, encoding: tuple) -> float: ...
