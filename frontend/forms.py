"""Dashboard forms. They only parse input (types, presence); the rules live in the services,
whose ``DomainError(field, reason)`` each form places next to the field that caused it."""

from __future__ import annotations

from typing import Any

from django import forms

from nasweb.errors import DomainError
from nasweb.uploads import read_module_upload
from searches.models import SearchInstance
from spaces import examples


def _number(*, initial: Any = None, step: str = "any", minimum: str | None = None, **kwargs: Any) -> forms.CharField:
    """A number typed by the user: a numeric keyboard, but the service judges the value."""
    attrs = {"step": step, "inputmode": "decimal" if step == "any" else "numeric"}
    if minimum is not None:
        attrs["min"] = minimum
    return forms.CharField(initial=initial, widget=forms.NumberInput(attrs=attrs), **kwargs)


class ServiceForm(forms.Form):
    """A form whose service errors name fields in the service's words (``field_map`` translates)."""

    field_map: dict[str, str] = {}

    def add_domain_error(self, error: DomainError, *, field_map: dict[str, str] | None = None) -> None:
        names = {**self.field_map, **(field_map or {})}
        field = names.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.reason)


# --------------------------------------------------------------------------------------------------
# Search spaces
# --------------------------------------------------------------------------------------------------


class SpaceUploadForm(ServiceForm):
    name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    encodings = forms.FileField(
        label="Encodings file", error_messages={"required": "choose an encodings file (JSON or CSV)"},
        help_text="JSON list of equal-length lists (or {\"encodings\": [...]}), or CSV with one encoding per row.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,.csv,application/json,text/csv"}),
    )
    module = forms.FileField(
        label="encoding_to_net module (.py)", required=False,
        help_text="A Python file defining encoding_to_net(encoding) -> torch.nn.Module.",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,text/x-python"}),
    )
    module_source = forms.CharField(
        label="…or paste the module source", required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
    )
    sample_input_shape = forms.CharField(
        label="Sample input shape", initial="1,3,32,32", max_length=100,
        help_text="Shape of the random input used to validate and profile, e.g. 1,3,32,32.",
    )
    max_profiled = _number(label="Profile at most", step="1", minimum="1", required=False,
                           help_text="Profile a seeded random subset of this size (empty: every encoding).")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The service names the module "module"; point its errors at whichever input was used.
        self.field_map = {"module": "module" if data.get("module") else "module_source"}
        return data

    def module_text(self) -> str:
        """The module source (an uploaded file wins over pasted text)."""
        upload = self.cleaned_data.get("module")
        if upload:
            return read_module_upload(upload, field="module")
        return self.cleaned_data.get("module_source") or ""

    def max_profiled_value(self) -> int | None:
        text = (self.cleaned_data.get("max_profiled") or "").strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise DomainError("max_profiled", "write a whole number, or leave it empty for all") from None


class SpaceExampleForm(ServiceForm):
    example = forms.ChoiceField(
        label="Example space", widget=forms.RadioSelect,
        choices=[(spec.name, spec.title) for spec in examples.EXAMPLES.values()],
        initial=next(iter(examples.EXAMPLES), None),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the example's title.")


class SpaceBundleForm(ServiceForm):
    bundle = forms.FileField(
        label="Bundle file (.nastune)", error_messages={"required": "choose a bundle file (.nastune)"},
        help_text="A space downloaded from NASWeb or saved by nastune; opening it never runs code.",
        widget=forms.ClearableFileInput(attrs={"accept": ".nastune,.zip,application/zip"}),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the name stored in the bundle.")


# --------------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------------


IMAGE_FIELDS = ("dataset", "n_classes", "train_split", "eval_split", "epochs_hi", "epochs_lo", "batch_size",
                "gpus_per_eval", "image_size")


class SearchForm(ServiceForm):
    space = forms.ChoiceField(label="Search space")
    name = forms.CharField(max_length=200, required=False)
    evaluator_kind = forms.ChoiceField(
        label="Evaluator", widget=forms.RadioSelect, choices=SearchInstance.EvaluatorKind.choices,
        initial=SearchInstance.EvaluatorKind.IMAGE_CLASSIFICATION,
    )
    # image classification
    dataset = forms.CharField(required=False, help_text="A Hugging Face dataset name or a folder on the workers.")
    n_classes = _number(label="Classes", initial="10", step="1", minimum="2", required=False)
    train_split = forms.CharField(label="Training split", initial="train", required=False)
    eval_split = forms.CharField(label="Evaluation split", initial="validation", required=False)
    epochs_hi = _number(label="Epochs, high fidelity", initial="12", step="1", minimum="1", required=False)
    epochs_lo = _number(label="Epochs, low fidelity", initial="3", step="1", minimum="1", required=False,
                        help_text="Used when the low fidelity has a cost.")
    batch_size = _number(label="Batch size", initial="64", step="1", minimum="1", required=False)
    gpus_per_eval = _number(label="GPUs per evaluation", initial="1", step="1", minimum="0", required=False)
    image_size = _number(label="Image size (px)", initial="224", step="1", minimum="8", required=False)
    # uploaded evaluator module
    evaluator_module = forms.FileField(
        label="Evaluator module (.py)", required=False,
        help_text="A Python file defining evaluate(encoding, fidelity) -> float (higher is better).",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,text/x-python"}),
    )
    evaluator_source = forms.CharField(
        label="…or paste the evaluator source", required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
    )
    # tabular lookup
    evaluator_table = forms.FileField(
        label="Table (CSV)", required=False,
        help_text="Columns index, hi (and lo): the value of each encoding index per fidelity.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    delay_s = _number(label="Delay per lookup (s)", initial="0", minimum="0", required=False,
                      help_text="Simulates training time in demos.")
    # the search
    hi_fi_cost = _number(label="High-fidelity cost", initial="1", minimum="0", required=False,
                         help_text="Any unit (e.g. epochs); the budget counts high-fidelity evaluations.")
    lo_fi_cost = _number(label="Low-fidelity cost", minimum="0", required=False,
                         help_text="Empty: no low fidelity. Must be below the high-fidelity cost.")
    budget = _number(label="Budget", initial="50", minimum="0", required=False,
                     help_text="In high-fidelity evaluations.")
    parallelism = _number(label="Parallel evaluations", initial="1", step="1", minimum="1", required=False)
    seed = _number(label="Seed", initial="0", step="1", minimum="0", required=False)
    acquisition = forms.ChoiceField(choices=SearchInstance.Acquisition.choices,
                                    initial=SearchInstance.Acquisition.EI)

    field_map = {f"evaluator_config.{name}": name for name in (*IMAGE_FIELDS, "delay_s")} | {
        "evaluator_config": "dataset",
    }

    def __init__(self, *args: Any, spaces: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["space"].choices = [(str(space.id), f"{space.name} ({space.n_encodings} encodings)")
                                        for space in spaces]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("evaluator_module"):
            self.field_map = {**self.field_map, "evaluator_source": "evaluator_module"}
        return data

    def evaluator_source_text(self) -> str:
        """The evaluator module source (an uploaded file wins over pasted text)."""
        upload = self.cleaned_data.get("evaluator_module")
        if upload:
            try:
                return upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DomainError("evaluator_module", "the module file is not UTF-8 text") from None
        return self.cleaned_data.get("evaluator_source") or ""

    def evaluator_config(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["evaluator_kind"] == SearchInstance.EvaluatorKind.IMAGE_CLASSIFICATION:
            return {name: data[name].strip() for name in IMAGE_FIELDS if (data.get(name) or "").strip()}
        if data["evaluator_kind"] == SearchInstance.EvaluatorKind.TABULAR:
            return {"delay_s": (data.get("delay_s") or "").strip() or 0}
        return {}
