"""What a user asks for when starting a search: one typed value that the web form and the API both build.

The defaults live here only: the form's initial values and the API serializer's defaults read them
from :data:`DEFAULTS`. The range checks live here too, so both front doors give the same messages.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from nasweb.errors import DomainError
from searches.models import SearchInstance

NAME_MAX_CHARS = 120
BUDGET_MAX = 1_000_000
COST_MAX = 1e9
PARALLELISM_MAX = 64
SEED_MAX = 2**31 - 1


class SearchValidationError(DomainError):
    """Bad input for a search; ``field`` names the form/API field at fault."""


@dataclass(frozen=True)
class SearchSpec:
    """A search as asked for. Field names are the form's and the API's input names.

    ``evaluator_config`` holds the kind's settings (see :mod:`searches.evaluator_kinds`);
    ``evaluator_module`` is the text of an uploaded module file, ``evaluator_source`` pasted text
    (a spec has at most one of them); ``evaluator_table`` the bytes of an uploaded CSV table.
    """

    name: str
    evaluator_kind: str
    budget: float
    hi_fi_cost: float = 1.0
    lo_fi_cost: float | None = None
    parallelism: int = 1
    seed: int = 0
    acquisition: str = "ei"
    direction: str = "maximize"
    evaluator_config: dict[str, Any] = field(default_factory=dict)
    evaluator_source: str = ""
    evaluator_module: str | None = None
    evaluator_table: bytes | None = None

    def checked(self) -> SearchSpec:
        """This spec with its name stripped and its numbers typed, or the first bad field refused.

        The evaluator's own part (config, module, table) is checked by its kind.
        """
        name = (self.name or "").strip()
        if not name or len(name) > NAME_MAX_CHARS:
            raise SearchValidationError("name", f"give the search a name of at most {NAME_MAX_CHARS} characters")
        budget = _number(self.budget, "budget", low=0, high=BUDGET_MAX, low_inclusive=False)
        hi_fi_cost = _number(self.hi_fi_cost, "hi_fi_cost", low=0, high=COST_MAX, low_inclusive=False)
        lo_fi_cost = None
        if self.lo_fi_cost is not None:
            lo_fi_cost = _number(self.lo_fi_cost, "lo_fi_cost", low=0, high=COST_MAX, low_inclusive=False)
            if lo_fi_cost >= hi_fi_cost:
                raise SearchValidationError("lo_fi_cost", "the low fidelity must cost less than the high fidelity")
        parallelism = int(_number(self.parallelism, "parallelism", low=1, high=PARALLELISM_MAX, integer=True))
        seed = int(_number(self.seed, "seed", low=0, high=SEED_MAX, integer=True))
        acquisitions = SearchInstance.Acquisition.values
        if self.acquisition not in acquisitions:
            raise SearchValidationError("acquisition", f"choose one of {', '.join(acquisitions)}")
        directions = SearchInstance.Direction.values
        if self.direction not in directions:
            raise SearchValidationError("direction", f"choose one of {', '.join(directions)}")
        if self.evaluator_module is not None and self.evaluator_source:
            raise SearchValidationError("evaluator_module", "give either an evaluator module file or evaluator_source")
        return dataclasses.replace(self, name=name, budget=budget, hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost,
                                   parallelism=parallelism, seed=seed)


def _number(value: Any, field: str, *, low: float, high: float, integer: bool = False,
            low_inclusive: bool = True) -> float:
    """``value`` as a number within its bounds; ``nan`` and infinities fail the bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SearchValidationError(field, "must be an integer" if integer else "must be a number")
    if integer and (not math.isfinite(value) or value != int(value)):
        raise SearchValidationError(field, "must be an integer")
    number = float(value)
    if not (low <= number if low_inclusive else low < number) or not number <= high:
        bound = f"{'at least' if low_inclusive else 'more than'} {low:g}"
        raise SearchValidationError(field, f"must be {bound} and at most {high:g}")
    return number


DEFAULTS: dict[str, Any] = {
    spec_field.name: spec_field.default for spec_field in dataclasses.fields(SearchSpec)
    if spec_field.default is not dataclasses.MISSING
}
"""Every input with a default, and that default (the form and the API read them from here)."""

SUGGESTIONS: dict[str, Any] = {**DEFAULTS, "budget": 50.0, "evaluator_kind": "image_classification"}
"""What the web form starts with: the defaults, and a suggestion for the required budget and kind."""
