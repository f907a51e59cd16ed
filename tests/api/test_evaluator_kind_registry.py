"""Evaluator kinds: one contract for every registered kind, and a new kind is one class and one registry entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontend.forms import SearchForm
from searches import evaluator_kinds
from searches.evaluator_kinds import EvaluationFailed, EvaluatorKind, Setting, StoredEvaluator
from searches.evaluators import EvaluationRequest, EvaluatorValidationError
from searches.models import SearchInstance
from searches.spec import SearchSpec
from tests.api.tiny import tiny_value
from usercode import SandboxLimits

KINDS = list(evaluator_kinds.KINDS.values())
SPEC_FIELDS = {spec_field.name for spec_field in dataclasses.fields(SearchSpec)}


class ConstantKind(EvaluatorKind):
    """A kind defined outside the registry module: every candidate scores its ``score`` setting."""

    name = "constant"
    label = "Constant score (test)"
    description = "Every candidate scores the same."
    settings = (Setting("score", "Score", float, default=1.0, low=0, high=10),)

    def validate(self, spec: SearchSpec, space: object) -> StoredEvaluator:
        return StoredEvaluator(config=self.clean_settings(spec.evaluator_config))

    def run(self, request: EvaluationRequest) -> float:
        return float(request.search.evaluator_config["score"])


@pytest.fixture
def constant_kind() -> Iterator[EvaluatorKind]:
    kind = evaluator_kinds.register(ConstantKind())
    yield kind
    del evaluator_kinds.KINDS[kind.name]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_every_kind_names_its_inputs_and_settings_in_the_specs_words(kind: EvaluatorKind) -> None:
    assert kind.label and kind.description and evaluator_kinds.get(kind.name) is kind
    assert set(kind.inputs) <= SPEC_FIELDS  # e.g. evaluator_table: the form and API field of that name
    assert not {setting.name for setting in kind.settings} & SPEC_FIELDS


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind.settings], ids=lambda kind: kind.name)
def test_every_kind_with_settings_refuses_a_config_that_is_not_an_object(kind: EvaluatorKind) -> None:
    with pytest.raises(EvaluatorValidationError) as caught:
        kind.clean_settings([1, 2])
    assert caught.value.field == "evaluator_config"


def test_setting_names_are_unique_across_kinds_since_each_is_a_form_field() -> None:
    names = [setting.name for kind in KINDS for setting in kind.settings]
    assert len(names) == len(set(names))


def test_the_stored_kind_choices_match_the_registry() -> None:
    assert [name for name, _ in evaluator_kinds.choices()] == SearchInstance.EvaluatorKind.values


def test_an_unknown_kind_is_refused_on_its_field() -> None:
    with pytest.raises(EvaluatorValidationError) as caught:
        evaluator_kinds.get("magic")
    assert caught.value.field == "evaluator_kind" and "image_classification" in caught.value.reason


def test_only_image_classification_holds_gpus(make_search) -> None:
    search = make_search(evaluator_kind="image_classification")
    search.evaluator_config = {"gpus_per_eval": 2}
    assert evaluator_kinds.kind_of(search).gpus_needed(search) == 2
    assert evaluator_kinds.get("tabular").gpus_needed(search) == evaluator_kinds.get("module").gpus_needed(search) == 0


def test_the_tabular_kind_runs_a_lookup_and_fails_where_the_table_has_no_value(make_search, tmp_path: Path) -> None:
    search = make_search()
    request = EvaluationRequest(
        search=search, encoding=[], encoding_index=5, fidelity="lo", log_path=tmp_path / "log.txt",
        scratch=tmp_path, runs_folder=tmp_path, gpu="cpu", limits=SandboxLimits(memory_mb=512, cpu_s=10, wall_s=10),
        on_tick=lambda tail: True, tick_s=0.01, log_tail_chars=100,
    )
    assert evaluator_kinds.kind_of(search).run(request) == tiny_value(5, "lo")
    assert "value" in request.log_path.read_text()
    with pytest.raises(EvaluationFailed, match="no lo value for encoding 999"):
        evaluator_kinds.kind_of(search).run(dataclasses.replace(request, encoding_index=999))


def test_a_new_kind_is_offered_by_the_form_and_accepted_by_the_api(api, make_space, constant_kind) -> None:
    form = SearchForm(spaces=[])
    assert ("constant", "Constant score (test)") in form.fields["evaluator_kind"].choices
    group = next(group for group in form.evaluator_groups() if group["kind"] is constant_kind)
    assert [field.name for field in group["narrow"]] == ["score"]
    response = api("owner").post("/api/searches/", {
        "space": make_space().id, "name": "constant", "evaluator_kind": "constant", "budget": 2,
        "evaluator_config": {"score": 3}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["evaluator_config"] == {"score": 3.0}


def test_a_new_kinds_setting_is_checked_with_its_range(api, make_space, constant_kind) -> None:
    response = api("owner").post("/api/searches/", {
        "space": make_space().id, "name": "constant", "evaluator_kind": "constant", "budget": 2,
        "evaluator_config": {"score": 11}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "evaluator_config.score", "reason": "must be at least 0 and at most 10"}]
