"""Dashboard forms. They only parse input (types, presence); the rules live in the services,
whose ``DomainError(field, reason)`` each form places next to the field that caused it."""

from __future__ import annotations

from typing import Any

from django import forms

from nasweb.errors import DomainError
from nasweb.uploads import read_module_upload, read_upload
from searches import evaluator_kinds
from searches.evaluator_kinds import Setting
from searches.models import SearchInstance
from searches.spec import DEFAULTS, SUGGESTIONS, SearchSpec
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
        label="Encodings file", required=False,
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
    position_types = forms.CharField(
        label="Position types", required=False, max_length=10_000,
        help_text="One per position, comma-separated: infer, categorical, ordinal, numeric or log. Choosing a "
                  "file fills in what the engine infers; empty: infer every position.")
    # An encodings file that was valid when the form came back with another error, kept so that the user
    # need not choose it again (browsers forget chosen files).
    encodings_kept = forms.CharField(required=False, widget=forms.HiddenInput)
    encodings_kept_name = forms.CharField(required=False, widget=forms.HiddenInput)

    KEEP_MAX_BYTES = 2 * 2**20

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The service names the module "module"; point its errors at whichever input was used.
        self.field_map = {"module": "module" if data.get("module") else "module_source"}
        if not data.get("encodings") and not data.get("encodings_kept"):
            self.add_error("encodings", "choose an encodings file (JSON or CSV)")
        return data

    def encodings_upload(self) -> Any:
        """The chosen encodings file, or the one kept from the previous attempt."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = self.cleaned_data.get("encodings")
        if upload:
            return upload
        name = self.cleaned_data.get("encodings_kept_name") or "encodings.json"
        return SimpleUploadedFile(name, self.cleaned_data["encodings_kept"].encode())

    def keep_valid_uploads(self) -> None:
        """After an error elsewhere, keep the encodings file and module file that were valid: the encodings
        as hidden text (up to ``KEEP_MAX_BYTES``), the module as the pasted source."""
        from spaces.services import parse_encodings, validate_encodings, validate_module_source

        kept = self.data.copy()
        upload = self.files.get(self.add_prefix("encodings"))
        if upload is not None and upload.size <= self.KEEP_MAX_BYTES and "encodings" not in self.errors:
            upload.seek(0)  # the service may have read it already
            raw = upload.read()
            upload.seek(0)
            try:
                validate_encodings(parse_encodings(raw, upload.name or ""))
                kept[self.add_prefix("encodings_kept")] = raw.decode("utf-8-sig")
                kept[self.add_prefix("encodings_kept_name")] = upload.name or "encodings.json"
            except (DomainError, UnicodeDecodeError):
                pass
        module = self.files.get(self.add_prefix("module"))
        if module is not None and "module" not in self.errors and not kept.get(self.add_prefix("module_source")):
            try:
                module.seek(0)
                text = read_module_upload(module, field="module")
                kept[self.add_prefix("module_source")] = validate_module_source(
                    text, field="module", function="encoding_to_net")
            except DomainError:
                pass
        self.data = kept

    def kept_encodings_name(self) -> str:
        return self.data.get(self.add_prefix("encodings_kept_name"), "") if self.is_bound else ""

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


def example_data_missing(name: str) -> str | None:
    """Why this server cannot build the example (its data file is missing), or ``None``. Only NAS-Bench-201
    reads a data file (its table ships in the repository; ``NASWEB_NB201_CSV`` may point elsewhere)."""
    if name != "nb201":
        return None
    from examples.nb201.table import default_csv_path

    path = default_csv_path()
    return None if path.exists() else f"this server lacks its table ({path} not found; see NASWEB_NB201_CSV)"


def available_examples() -> list[Any]:
    return [spec for spec in examples.EXAMPLES.values() if example_data_missing(spec.name) is None]


class SpaceExampleForm(ServiceForm):
    example = forms.ChoiceField(
        label="Example space", widget=forms.RadioSelect,
        choices=[(spec.name, spec.title) for spec in examples.EXAMPLES.values()],
        initial=next(iter(examples.EXAMPLES), None),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the example's title.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = available_examples()  # an example without its data on this server is not offered
        self.fields["example"].choices = [(spec.name, spec.title) for spec in offered]
        self.fields["example"].initial = offered[0].name if offered else None


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


def _shown(value: Any) -> str | None:
    """A default as the form shows it: ``1.0`` as ``1``."""
    if value is None:
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def _spec_number(name: str, *, integer: bool = False, minimum: str = "0", **kwargs: Any) -> forms.Field:
    """A number input of the spec; its initial value is the spec's default (or suggestion)."""
    attrs = {"step": "1" if integer else "any", "inputmode": "numeric" if integer else "decimal", "min": minimum}
    message = "must be an integer" if integer else "must be a number"
    field_class = forms.IntegerField if integer else forms.FloatField
    return field_class(initial=_shown(SUGGESTIONS.get(name)), widget=forms.NumberInput(attrs=attrs),
                       error_messages={"invalid": message, "required": message}, **kwargs)


def _setting_field(setting: Setting, owner: Any = None) -> forms.Field:
    """The form field of one evaluator setting; empty means the setting's default, the kind judges the value."""
    common: dict[str, Any] = {"label": setting.label, "required": False, "help_text": setting.help,
                              "initial": _shown(setting.suggestion)}
    if setting.choices is not None:
        options = setting.choices(owner) if owner is not None else []
        return forms.ChoiceField(**{**common, "initial": ""},
                                 choices=[("", "none" if options else "none yet (upload one on the Datasets page)"),
                                          *options])
    if setting.type is str:
        return forms.CharField(**common)
    integer = setting.type is int
    attrs = {"step": "1" if integer else "any", "inputmode": "numeric" if integer else "decimal",
             "min": f"{setting.low:g}"}
    field_class = forms.IntegerField if integer else forms.FloatField
    return field_class(widget=forms.NumberInput(attrs=attrs), **common,
                       error_messages={"invalid": "must be an integer" if integer else "must be a number"})


class SearchForm(ServiceForm):
    """A :class:`SearchSpec` from the browser. Field names are the spec's; each evaluator kind's
    settings (``evaluator_config.<name>``) are fields of their own name, added from the kind registry."""

    space = forms.ChoiceField(label="Search space")
    name = forms.CharField(max_length=200, required=False)
    evaluator_kind = forms.ChoiceField(
        label="Evaluator", widget=forms.RadioSelect, choices=evaluator_kinds.choices(),
        initial=SUGGESTIONS["evaluator_kind"],
    )
    evaluator_module = forms.FileField(
        label="Evaluator module (.py)", required=False,
        help_text="A Python file defining evaluate(encoding, fidelity) -> float (higher is better).",
        widget=forms.ClearableFileInput(attrs={"accept": ".py,text/x-python"}),
    )
    evaluator_source = forms.CharField(
        label="…or paste the evaluator source", required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
    )
    evaluator_table = forms.FileField(
        label="Table (CSV)", required=False,
        help_text="Columns index, hi (and lo): the value of each encoding index per fidelity.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    hi_fi_cost = _spec_number("hi_fi_cost", label="High-fidelity cost", required=False,
                              help_text="Any unit (e.g. epochs); the budget counts high-fidelity evaluations.")
    lo_fi_cost = _spec_number("lo_fi_cost", label="Low-fidelity cost", required=False,
                              help_text="Empty: no low fidelity. Must be below the high-fidelity cost.")
    budget = _spec_number("budget", label="Budget", help_text="In high-fidelity evaluations.")
    parallelism = _spec_number("parallelism", integer=True, minimum="1", label="Parallel evaluations",
                               required=False)
    seed = _spec_number("seed", integer=True, label="Seed", required=False)
    acquisition = forms.ChoiceField(choices=SearchInstance.Acquisition.choices, initial=SUGGESTIONS["acquisition"])
    surrogate = forms.ChoiceField(
        choices=SearchInstance.Surrogate.choices, initial=SUGGESTIONS["surrogate"], required=False,
        help_text="The Gaussian process is faster at choosing and needed fewer evaluations on two of the four "
                  "benchmark datasets (never significantly more); the fine-tuned ensemble is the earlier default.")
    direction = forms.ChoiceField(label="Better values are", choices=[
        (SearchInstance.Direction.MAXIMIZE, "higher (maximise, e.g. accuracy)"),
        (SearchInstance.Direction.MINIMIZE, "lower (minimise, e.g. loss or error)")],
        initial=SUGGESTIONS["direction"], required=False)
    initial_candidates = forms.CharField(
        label="Evaluate first", required=False, max_length=10000,
        help_text="Encoding indices tried before anything else, in this order (e.g. the architectures you run "
                  "today). Empty: the best results of the searches this space was pretrained on, if any.",
        widget=forms.TextInput(attrs={"placeholder": "12, 407, 3581", "spellcheck": "false"}))
    objectives = forms.CharField(
        label="Objectives", required=False, max_length=500,
        help_text="Several objectives, the first primary: accuracy:max, latency:min. The evaluator then returns "
                  "a dict; a name that is a metric of the space (latency, params, an uploaded latency_<device>) is "
                  "read from the profile. Empty: one value. The primary sets 'Better values are'.",
        widget=forms.TextInput(attrs={"placeholder": "accuracy:max, latency:min", "spellcheck": "false"}))
    constraints = forms.CharField(
        label="Constraints", required=False, max_length=1000,
        help_text="On space metrics or returned values: latency <= 0.005; params <= 2e6. Candidates almost surely "
                  "over a bound are not evaluated; the best result is the best feasible one.",
        widget=forms.TextInput(attrs={"placeholder": "latency <= 0.005", "spellcheck": "false"}))
    reference_point = forms.CharField(
        label="Hypervolume reference point", required=False, max_length=500,
        help_text="objective=value, ...; empty: computed (the worst over the space or the results, minus 10%).",
        widget=forms.TextInput(attrs={"placeholder": "accuracy=0.5, latency=0.02", "spellcheck": "false"}))
    clone_of = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, spaces: list[Any], clone_table: bytes | None = None, owner: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clone_table = clone_table  # the cloned search's table, used unless another one is uploaded
        self.fields["space"].choices = [
            (str(space.id), f"{space.name} ({space.n_encodings:,} encoding{'' if space.n_encodings == 1 else 's'})")
            for space in spaces]
        self.fields["evaluator_kind"].choices = evaluator_kinds.choices()  # kinds registered after import too
        for kind in evaluator_kinds.KINDS.values():
            for setting in kind.settings:
                if setting.in_form:
                    self.fields[setting.name] = _setting_field(setting, owner)

    def evaluator_groups(self) -> list[dict[str, Any]]:
        """Per kind: its label, description and bound fields (narrow ones side by side, text areas below)."""
        groups = []
        for kind in evaluator_kinds.KINDS.values():
            names = [*kind.inputs, *(setting.name for setting in kind.settings if setting.in_form)]
            fields = [self[name] for name in names]
            wide = [field for field in fields if isinstance(field.field.widget, forms.Textarea)]
            groups.append({"kind": kind, "narrow": [field for field in fields if field not in wide], "wide": wide})
        return groups

    def add_domain_error(self, error: DomainError, *, field_map: dict[str, str] | None = None) -> None:
        # A kind's setting evaluator_config.<name> is the form field <name>.
        field = (error.field or "").removeprefix("evaluator_config.")
        self.add_error(field if field in self.fields else None, error.reason)

    def spec(self) -> SearchSpec:
        """The search asked for (uploads read here; an uploaded module wins over pasted text)."""
        data = self.cleaned_data
        kind = evaluator_kinds.get(data["evaluator_kind"])
        config = {}
        for setting in kind.settings:
            value = data.get(setting.name)
            if setting.in_form and value is not None and value != "":
                config[setting.name] = value
        module = data.get("evaluator_module") if "evaluator_module" in kind.inputs else None
        table = data.get("evaluator_table") if "evaluator_table" in kind.inputs else None
        table_bytes = read_upload(table, field="evaluator_table", text=False) if table else None
        if table_bytes is None and "evaluator_table" in kind.inputs:
            table_bytes = self.clone_table
        pasted = (data.get("evaluator_source") or "") if "evaluator_source" in kind.inputs else ""

        def given(name: str) -> Any:
            return DEFAULTS[name] if data.get(name) is None else data[name]

        return SearchSpec(
            name=data["name"], evaluator_kind=kind.name, budget=data["budget"], hi_fi_cost=given("hi_fi_cost"),
            lo_fi_cost=data.get("lo_fi_cost"), parallelism=given("parallelism"), seed=given("seed"),
            acquisition=data["acquisition"], surrogate=data.get("surrogate") or DEFAULTS["surrogate"],
            direction=data.get("direction") or DEFAULTS["direction"],
            evaluator_config=config,
            evaluator_source="" if module else pasted,
            evaluator_module=read_module_upload(module, field="evaluator_module") if module else None,
            evaluator_table=table_bytes,
            objectives=data.get("objectives") or [], constraints=data.get("constraints") or [],
            reference_point=data.get("reference_point") or {},
            initial_candidates=data.get("initial_candidates") or None,
        )
