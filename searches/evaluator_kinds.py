"""The evaluator kinds a web user can choose: one class each, registered by name.

A kind checks a :class:`~searches.spec.SearchSpec` and says what to store (:meth:`EvaluatorKind.validate`),
how many GPUs one evaluation holds (:meth:`EvaluatorKind.gpus_needed`) and runs one evaluation on a
worker (:meth:`EvaluatorKind.run`). Its ``settings`` are the keys of ``evaluator_config`` the web form
offers as fields, and its ``inputs`` the other spec fields it reads (module, table). Adding a kind is one
subclass and one ``register`` call; the form, the API choices and the worker find it here.
"""

from __future__ import annotations

import hashlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from searches import evaluators
from searches.evaluators import EvaluationRequest, EvaluatorValidationError
from spaces.services import validate_module_source
from usercode import SandboxError, run_user_code, tail
from usercode.inputs import dataset_for_sandbox, working_copy

if TYPE_CHECKING:
    from searches.models import SearchInstance
    from searches.spec import SearchSpec
    from spaces.models import SearchSpace


class EvaluationFailed(Exception):
    """The evaluator ran but has no value for this candidate (the evaluation fails, the search goes on)."""


@dataclass(frozen=True)
class Setting:
    """One key of a kind's ``evaluator_config``: its type, range, default and how the form shows it.

    ``default`` is used when the key is omitted; ``None`` makes it required (``required`` is then the
    reason given for a missing text). ``initial`` is what the form suggests; ``in_form=False`` keeps an
    API-only setting out of the form. ``choices(owner)`` makes the form field a choice among the
    ``(value, label)`` pairs it returns for the user filling in the form (empty: the default).
    """

    name: str
    label: str
    type: type
    default: Any = None
    low: float = 0
    high: float = math.inf
    initial: Any = None
    help: str = ""
    required: str = ""
    in_form: bool = True
    choices: Callable[[Any], list[tuple[str, str]]] | None = None

    @property
    def suggestion(self) -> Any:
        return self.default if self.initial is None else self.initial

    def clean(self, config: dict[str, Any]) -> Any:
        """The value of this setting in ``config`` (or its default), or an error naming ``evaluator_config.<name>``."""
        field = f"evaluator_config.{self.name}"
        value = config.get(self.name)
        if value is None or value == "":
            value = self.default
        if self.type is str:
            text = "" if value is None else str(value).strip()
            if not text and self.required:
                raise EvaluatorValidationError(field, self.required)
            return text
        if self.type is int:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or not self.low <= value <= self.high:
                raise EvaluatorValidationError(field, f"must be an integer from {self.low:g} to {self.high:g}")
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise EvaluatorValidationError(field, "must be a number") from None
        if isinstance(value, bool) or not self.low <= number <= self.high:
            raise EvaluatorValidationError(field, f"must be at least {self.low:g} and at most {self.high:g}")
        return number


@dataclass(frozen=True)
class StoredEvaluator:
    """What a validated kind stores on the search: its config, its module source, its table file."""

    config: dict[str, Any]
    source: str = ""
    table: bytes | None = None

    @property
    def source_sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest() if self.source else ""


class EvaluatorKind(ABC):
    """One kind of evaluator. Subclasses set the class attributes and implement ``validate`` and ``run``."""

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]  # shown above the kind's fields in the form (HTML allowed: our text only)
    settings: ClassVar[tuple[Setting, ...]] = ()
    inputs: ClassVar[tuple[str, ...]] = ()  # spec fields besides evaluator_config (form fields of this kind)

    @abstractmethod
    def validate(self, spec: SearchSpec, space: SearchSpace) -> StoredEvaluator:
        """Check the spec's evaluator part against the space; raise a ``DomainError`` naming the field."""

    @abstractmethod
    def run(self, request: EvaluationRequest) -> float:
        """Evaluate one candidate at one fidelity on a worker; higher is better. Raise
        :class:`EvaluationFailed` or ``SandboxError`` when there is no value."""

    def gpus_needed(self, search: SearchInstance) -> int:
        """GPUs one evaluation holds while it runs (0: it runs on the CPU)."""
        return 0

    def clean_settings(self, config: Any, *, strict: bool = True,
                       skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The value of every setting but those in ``skip``. ``strict`` refuses an unknown key (a typo
        would otherwise be ignored silently); kinds that always ignored extra keys pass ``strict=False``."""
        if not isinstance(config, dict):
            raise EvaluatorValidationError("evaluator_config",
                                           f"must be an object of {self.name.replace('_', '-')} settings")
        known = {setting.name for setting in self.settings}
        unknown = sorted(set(config) - known)
        if strict and unknown:
            raise EvaluatorValidationError(f"evaluator_config.{unknown[0]}",
                                           f"unknown setting; known ones are {', '.join(sorted(known))}")
        return {setting.name: setting.clean(config) for setting in self.settings if setting.name not in skip}


# The trainer's ImageNet-style augmentation (create_img_class_evaluator's defaults).
AUGMENT_DEFAULTS = {"min_crop_scale": 0.08, "crop_pct": 0.875}


def _ready_datasets_of(owner: Any) -> list[tuple[str, str]]:
    from image_datasets.selectors import image_dataset_choices

    return image_dataset_choices(owner=owner)


def _with_user_dataset(config: Any, *, owner: Any) -> Any:
    """``config`` with the folder, classes and splits of the owner's chosen dataset (``user_dataset``), which
    must be ready; a config without one is returned as it is."""
    if not isinstance(config, dict) or config.get("user_dataset") in (None, "", 0, "0"):
        return config
    from image_datasets.models import ImageDataset

    field = "evaluator_config.user_dataset"
    chosen = config["user_dataset"]
    if isinstance(chosen, str) and chosen.strip().isdigit():
        chosen = int(chosen)
    if not isinstance(chosen, int) or isinstance(chosen, bool):
        raise EvaluatorValidationError(field, "must be the id of one of your datasets")
    dataset = ImageDataset.objects.filter(owner=owner, id=chosen).first()
    if dataset is None:
        raise EvaluatorValidationError(field, "you have no dataset with this id")
    if dataset.state != ImageDataset.State.READY:
        detail = f": {dataset.failure_reason}" if dataset.failure_reason else ""
        raise EvaluatorValidationError(field, f"the dataset {dataset.name!r} is {dataset.state}, not ready{detail}")
    named = str(config.get("dataset") or "").strip()
    if named and named != dataset.folder:  # a cloned search's config names the folder it was given
        raise EvaluatorValidationError("evaluator_config.dataset",
                                       "give either one of your datasets or a dataset name or folder, not both")
    return {**config, "user_dataset": chosen, "dataset": dataset.folder, "n_classes": dataset.n_classes,
            "train_split": "train", "eval_split": "validation"}


class ImageClassificationKind(EvaluatorKind):
    """The engine's ``create_img_class_evaluator`` (torchrun inside), run in the sandbox since it
    builds networks from the space's user module."""

    name = "image_classification"
    label = "Built-in image classification"
    description = ("Trains each candidate with the built-in trainer (torchrun) on the workers' GPUs; the value is "
                   "the validation accuracy. Choose one of your <a href=\"/datasets/\">datasets</a>, or name a "
                   "Hugging Face dataset or a server-side folder.")
    settings = (
        Setting("user_dataset", "Your uploaded data", int, default=0, low=0,
                help="One of your checked datasets; it sets the dataset, the classes and the splits.",
                choices=_ready_datasets_of),
        Setting("dataset", "Dataset", str, help="A Hugging Face dataset name or a folder on the workers.",
                required="choose one of your datasets, or name a Hugging Face dataset or a server-side folder"),
        Setting("n_classes", "Classes", int, low=2, high=100_000, initial=10),
        Setting("train_split", "Training split", str, default="train"),
        Setting("eval_split", "Evaluation split", str, default="validation"),
        Setting("epochs_hi", "Epochs, high fidelity", int, low=1, high=10_000, initial=12),
        Setting("epochs_lo", "Epochs, low fidelity", int, low=1, high=10_000, initial=3,
                help="Used when the low fidelity has a cost."),
        Setting("batch_size", "Batch size", int, default=64, low=1, high=4096),
        Setting("gpus_per_eval", "GPUs per evaluation", int, default=1, low=0, high=16),
        Setting("image_size", "Image size (px)", int, default=224, low=8, high=1024),
        Setting("min_crop_scale", "Smallest random crop", float, default=AUGMENT_DEFAULTS["min_crop_scale"],
                low=0.01, high=1, help="Area fraction of a training image; 1: no random crop (tiny images)."),
        Setting("crop_pct", "Evaluation crop", float, default=AUGMENT_DEFAULTS["crop_pct"], low=0.01, high=1,
                help="Central fraction of an evaluation image; 1: the whole image."),
        Setting("dataset_config", "Dataset configuration", str, in_form=False),
    )

    def validate(self, spec: SearchSpec, space: SearchSpace) -> StoredEvaluator:
        has_low = spec.lo_fi_cost is not None
        config = _with_user_dataset(spec.evaluator_config, owner=space.owner)
        # epochs_lo is only meaningful (and only required) with a low fidelity.
        clean = self.clean_settings(config, skip=frozenset() if has_low else frozenset({"epochs_lo"}))
        if not clean["user_dataset"]:
            del clean["user_dataset"]
        for name, default in AUGMENT_DEFAULTS.items():  # stored only when changed: older searches lack them
            if clean[name] == default:
                del clean[name]
        if not clean["dataset_config"]:
            del clean["dataset_config"]
        if has_low and clean["epochs_lo"] >= clean["epochs_hi"]:
            raise EvaluatorValidationError("evaluator_config.epochs_lo", "must be fewer than epochs_hi")
        return StoredEvaluator(config=clean)

    def gpus_needed(self, search: SearchInstance) -> int:
        return int(search.evaluator_config.get("gpus_per_eval", 1))

    def run(self, request: EvaluationRequest) -> float:
        search = request.search
        config = evaluators.image_classification_payload(search, request.fidelity, request.gpu, request.log_path)
        config.pop("log_path")
        run_dir = request.runs_folder / "runs" / f"{request.encoding_index}-{request.fidelity}"
        # The sandbox has no network and writes only its scratch folder: the dataset is shown to it
        # read-only (a Hub dataset is downloaded here first), the run folder is copied in and out.
        inputs = dataset_for_sandbox(config, cache_root=settings.MEDIA_ROOT / "hub-datasets",
                                     allowed_roots=settings.NASWEB_DATASET_DIRS)
        scratch = request.scratch
        with working_copy(run_dir, scratch) as sandbox_run:
            config.update(work_dir=str(scratch / "runs"), run_dir=str(sandbox_run))
            train_log = sandbox_run / "train.log"

            def training_tick(child_log: str) -> bool:
                return request.on_tick(tail(train_log, request.log_tail_chars, within=scratch) or child_log)

            try:
                return float(run_user_code(
                    "evaluate_image_classification", {"encoding": request.encoding, "config": config},
                    scratch=scratch, limits=request.limits, modules={"user_module.py": search.space.module_source},
                    log_path=request.log_path, gpu=request.gpu, on_tick=training_tick, tick_s=request.tick_s,
                    read_only=inputs,
                ))
            finally:
                training_log = tail(train_log, 200_000, within=scratch)
                if training_log:
                    with request.log_path.open("a") as log:
                        log.write(f"\n--- training log ({run_dir / 'train.log'}) ---\n{training_log}")


class ModuleKind(EvaluatorKind):
    """An uploaded module defining ``evaluate(encoding, fidelity) -> float``, run in the sandbox."""

    name = "module"
    label = "Uploaded evaluator module"
    description = ("Runs <code>evaluate(encoding, fidelity)</code> on a worker in a sandbox; <code>fidelity</code> "
                   "is <code>\"hi\"</code> or <code>\"lo\"</code>.")
    inputs = ("evaluator_module", "evaluator_source")

    def validate(self, spec: SearchSpec, space: SearchSpace) -> StoredEvaluator:
        # Errors name the input the source came from: the uploaded file, or the pasted text.
        field, source = ("evaluator_module", spec.evaluator_module) if spec.evaluator_module is not None else \
            ("evaluator_source", spec.evaluator_source)
        return StoredEvaluator(config={}, source=validate_module_source(source, field=field, function="evaluate"))

    def run(self, request: EvaluationRequest) -> float | dict[str, float]:
        result = run_user_code(
            "evaluate_module", {"encoding": request.encoding, "fidelity": request.fidelity}, scratch=request.scratch,
            limits=request.limits, modules={"evaluator_module.py": request.search.evaluator_source},
            log_path=request.log_path, gpu=request.gpu, on_tick=request.on_tick, tick_s=request.tick_s,
        )
        # a dict of named results (several objectives) is checked against the search's objectives on finish
        return {str(k): float(v) for k, v in result.items()} if isinstance(result, dict) else float(result)


class TabularKind(EvaluatorKind):
    """A CSV mapping encoding index to a value per fidelity, looked up in the worker (data, not code),
    with an optional artificial delay for demos."""

    name = "tabular"
    label = "Tabular lookup (CSV)"
    description = "Looks each value up in a table, for benchmarks such as NAS-Bench-201 and for demos."
    settings = (
        Setting("delay_s", "Delay per lookup (s)", float, default=0.0, low=0, high=3600,
                help="Simulates training time in demos."),
    )
    inputs = ("evaluator_table",)

    def validate(self, spec: SearchSpec, space: SearchSpace) -> StoredEvaluator:
        if spec.evaluator_table is None:
            raise EvaluatorValidationError("evaluator_table", "upload the CSV table (columns index, hi, lo)")
        names = evaluators.table_value_names(spec.objectives, spec.constraints)
        table = evaluators.parse_table(spec.evaluator_table, n_encodings=space.n_encodings,
                                       needs_low=spec.lo_fi_cost is not None, extra=names)
        for name in names:
            if name not in table and name not in (space.metrics or []):
                raise EvaluatorValidationError("evaluator_table", f"{name!r} is neither a column of the table nor a "
                                               "metric of the space; add the column or choose another name")
        return StoredEvaluator(config=self.clean_settings(spec.evaluator_config, strict=False),
                               table=spec.evaluator_table)

    def run(self, request: EvaluationRequest) -> float | dict[str, float]:
        table = evaluators.load_table(request.search)
        delay = float(request.search.evaluator_config.get("delay_s", 0))
        log_path = request.log_path
        with log_path.open("a") as log:
            log.write(f"tabular lookup of encoding {request.encoding_index} ({request.fidelity} fidelity)\n")
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            time.sleep(min(request.tick_s, max(0.0, deadline - time.monotonic())))
            if not request.on_tick(log_path.read_text()):
                raise SandboxError("cancelled", "stopped: the search was cancelled")
        value = table.get(request.fidelity, {}).get(request.encoding_index)
        if value is None:
            raise EvaluationFailed(f"the table has no {request.fidelity} value for encoding {request.encoding_index}")
        with log_path.open("a") as log:
            log.write(f"value {value}\n")
        objectives = request.search.objectives
        if objectives and request.fidelity == "hi":  # several objectives: the primary is hi, the rest by name
            result = {str(objectives[0][0]): value}
            for name in evaluators.table_value_names(objectives, request.search.constraints):
                if request.encoding_index in table.get(name, {}):
                    result[name] = table[name][request.encoding_index]
            return result
        return value


KINDS: dict[str, EvaluatorKind] = {}


def register(kind: EvaluatorKind) -> EvaluatorKind:
    """Make ``kind`` choosable; its settings must not reuse another kind's or a spec field's name."""
    if kind.name in KINDS:
        raise ValueError(f"evaluator kind {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


for _kind in (ImageClassificationKind(), ModuleKind(), TabularKind()):
    register(_kind)


def choices() -> list[tuple[str, str]]:
    """``(name, label)`` of every kind, in registration order (form radios, API choices)."""
    return [(kind.name, kind.label) for kind in KINDS.values()]


def get(name: str) -> EvaluatorKind:
    """The kind called ``name``; an unknown name is refused on the field ``evaluator_kind``."""
    kind = KINDS.get(name)
    if kind is None:
        raise EvaluatorValidationError("evaluator_kind", f"choose one of {', '.join(KINDS)}")
    return kind


def kind_of(search: SearchInstance) -> EvaluatorKind:
    return get(search.evaluator_kind)
