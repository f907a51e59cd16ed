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
INITIAL_CANDIDATES_MAX = 1000


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
    acquisition: str = "ucb"
    surrogate: str = "gp"
    direction: str = "maximize"
    #: encoding indices evaluated first, in order (a list, or the form's text "12, 407"); None: the best results
    #: of the searches the space was pretrained on (see :func:`spaces.services.space_add_search_results`)
    initial_candidates: Any = None
    evaluator_config: dict[str, Any] = field(default_factory=dict)
    evaluator_source: str = ""
    evaluator_module: str | None = None
    evaluator_table: bytes | None = None
    #: several objectives (the first is primary), constraints and the hypervolume's reference point; each as
    #: plain data or as the form's text (see :func:`goals_from_input`)
    objectives: Any = field(default_factory=list)
    constraints: Any = field(default_factory=list)
    reference_point: Any = field(default_factory=dict)

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
        surrogates = SearchInstance.Surrogate.values
        if self.surrogate not in surrogates:
            raise SearchValidationError("surrogate", f"choose one of {', '.join(surrogates)}")
        directions = SearchInstance.Direction.values
        if self.direction not in directions:
            raise SearchValidationError("direction", f"choose one of {', '.join(directions)}")
        if self.evaluator_module is not None and self.evaluator_source:
            raise SearchValidationError("evaluator_module", "give either an evaluator module file or evaluator_source")
        initial_candidates = _candidates(self.initial_candidates)
        objectives, constraints, reference = goals_from_input(self.objectives, self.constraints, self.reference_point)
        direction = self.direction
        if objectives:  # the primary objective's direction is the search's (its value column, its best)
            direction = "maximize" if objectives[0][1] == "max" else "minimize"
        return dataclasses.replace(self, name=name, budget=budget, hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost,
                                   parallelism=parallelism, seed=seed, initial_candidates=initial_candidates,
                                   objectives=objectives,
                                   constraints=constraints, reference_point=reference, direction=direction)


def _candidates(given: Any) -> list[int] | None:
    """``initial_candidates`` as a list of distinct indices in the order given (``None`` when not given)."""
    if given is None or (isinstance(given, str) and not given.strip()):
        return None
    parts = given
    if isinstance(given, str):
        if given.strip().startswith("["):  # JSON text from a multipart form
            import json

            from nasweb import safe_json

            try:
                parts = safe_json.loads(given)
            except (json.JSONDecodeError, safe_json.JSONInputError) as exc:
                raise SearchValidationError("initial_candidates", f"not valid JSON: {exc}") from None
        else:
            parts = _split(given)
    if not isinstance(parts, list | tuple):
        raise SearchValidationError("initial_candidates", "give a list of encoding indices, e.g. [12, 407]")
    if len(parts) > INITIAL_CANDIDATES_MAX:
        raise SearchValidationError("initial_candidates", f"give at most {INITIAL_CANDIDATES_MAX} encoding indices")
    out: list[int] = []
    for k, part in enumerate(parts):
        text = part.strip() if isinstance(part, str) else part
        if isinstance(text, str) and text.isascii() and text.isdigit():
            text = int(text)
        if isinstance(text, bool) or not isinstance(text, int) or text < 0:
            raise SearchValidationError("initial_candidates", f"entry {k + 1} ({part!r}) is not an encoding index"
                                        " (a whole number from 0)")
        if text not in out:
            out.append(text)
    return out


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").replace("\n", ",").split(",") if part.strip()]


def goals_from_input(objectives: Any, constraints: Any, reference_point: Any) -> tuple[
        list[list[str]], list[dict[str, Any]], dict[str, float]]:
    """Objectives, constraints and reference point as stored (``[[name, "max"|"min"]]``, ``[{"name", "op",
    "bound"}]``, ``{name: value}``), from plain data or the form's text: ``"accuracy:max, latency:min"``,
    ``"latency <= 0.005; params <= 2e6"``, ``"accuracy=0.5, latency=0.02"``.

    Raises:
        SearchValidationError: naming ``objectives``, ``constraints`` or ``reference_point``.
    """
    import json

    from nasweb import safe_json
    from searches.engine import Goals, SearchError

    def as_data(value: Any, field_name: str) -> Any:
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):  # JSON text from a multipart form
            try:
                return safe_json.loads(value)
            except json.JSONDecodeError as exc:
                raise SearchValidationError(field_name, f"not valid JSON: {exc.msg}") from None
            except safe_json.JSONInputError as exc:  # 100,000 levels deep, a 5,000-digit number
                raise SearchValidationError(field_name, str(exc)) from None
        return value

    objectives = as_data(objectives, "objectives")
    constraints = as_data(constraints, "constraints")
    reference_point = as_data(reference_point, "reference_point")
    if isinstance(objectives, str):
        pairs = []
        for part in _split(objectives):
            name, _, direction = part.partition(":")
            pairs.append((name.strip(), (direction or "max").strip()))
        objectives = pairs
    if isinstance(constraints, str):
        rules = []
        for part in _split(constraints):
            op = next((o for o in ("<=", ">=", "<", ">") if o in part), None)
            if op is None:
                raise SearchValidationError("constraints", f"{part!r}: write a constraint as 'metric <= bound'")
            name, _, bound = part.partition(op)
            try:
                number: Any = float(bound)
            except ValueError:
                number = bound.strip()
            rules.append({"name": name.strip(), "op": op, "bound": number})
        constraints = rules
    if isinstance(reference_point, str):
        point: dict[str, Any] = {}
        for part in _split(reference_point):
            name, sep, value = part.partition("=")
            if not sep:
                raise SearchValidationError("reference_point", f"{part!r}: write it as 'objective=value'")
            try:
                point[name.strip()] = float(value)
            except ValueError:
                raise SearchValidationError("reference_point", f"{part!r}: {value.strip()!r} is not a number") from None
        reference_point = point
    for field_name, value in (("objectives", objectives), ("constraints", constraints)):
        try:
            goals = Goals(**{field_name: value})
        except SearchError as exc:
            raise SearchValidationError(field_name, str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise SearchValidationError(field_name, f"malformed: {exc}") from None
    try:
        goals = Goals(objectives, constraints, reference_point)
    except SearchError as exc:
        raise SearchValidationError("reference_point", str(exc)) from None
    if len(goals.objectives) > 4:
        raise SearchValidationError("objectives", "at most 4 objectives")
    return ([[n, d] for n, d in goals.objectives],
            [{"name": c.name, "op": c.op, "bound": c.bound} for c in goals.constraints],
            dict(goals.reference_point))


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
