"""Searches and evaluations as the web app stores them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from spaces.models import SearchSpace


def _search_upload_path(search: SearchInstance, filename: str) -> str:
    return f"searches/{search.owner_id}/{search.uid}/{filename}"


class SearchInstance(models.Model):
    """One Bayesian-optimisation search over a ready space.

    State machine: ``queued -> running <-> paused -> finished | cancelled | failed``.
    Its evaluations are the engine's history (``searches.storage``); ``n_asks`` is the engine's ask
    counter, which seeds each proposal step's random choices and orders concurrent steps.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class EvaluatorKind(models.TextChoices):
        IMAGE_CLASSIFICATION = "image_classification", "Built-in image classification"
        MODULE = "module", "Uploaded evaluator module"
        TABULAR = "tabular", "Tabular lookup (CSV)"

    class Acquisition(models.TextChoices):
        UCB = "ucb", "Upper confidence bound"
        EI = "ei", "Expected improvement"
        THOMPSON = "thompson", "Thompson sampling"

    class Surrogate(models.TextChoices):
        GP = "gp", "Gaussian process (default)"
        ENSEMBLE = "ensemble", "fine-tuned deep ensemble"

    class Direction(models.TextChoices):
        MAXIMIZE = "maximize", "maximise"
        MINIMIZE = "minimize", "minimise"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING, State.PAUSED)

    uid = models.UUIDField(unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="searches")
    space = models.ForeignKey(SearchSpace, on_delete=models.PROTECT, related_name="searches")
    name = models.CharField(max_length=120)
    notes = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="short labels the owner filters by")
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.MAXIMIZE,
                                 help_text="whether a higher or a lower evaluation value is better")

    evaluator_kind = models.CharField(max_length=24, choices=EvaluatorKind.choices)
    evaluator_config = models.JSONField(default=dict, help_text="per fidelity: epochs, dataset, ...; kind specific")
    evaluator_source = models.TextField(blank=True, help_text="uploaded evaluator module source")
    evaluator_sha256 = models.CharField(max_length=64, blank=True)
    evaluator_table = models.FileField(upload_to=_search_upload_path, max_length=300, blank=True,
                                       help_text="tabular evaluator: CSV of encoding index -> value per fidelity")
    hi_fi_cost = models.FloatField(default=1.0)
    lo_fi_cost = models.FloatField(null=True, blank=True)
    budget = models.FloatField(help_text="in hi-fi evaluation units")
    spent = models.FloatField(default=0.0, help_text="in hi-fi evaluation units")
    parallelism = models.PositiveIntegerField(default=1, help_text="evaluations in flight at once")
    seed = models.IntegerField(default=0)
    acquisition = models.CharField(max_length=16, choices=Acquisition.choices, default=Acquisition.UCB,
                                   help_text="how the engine picks the next candidate (its acquisition)")
    surrogate = models.CharField(max_length=16, choices=Surrogate.choices, default=Surrogate.GP,
                                 help_text="what the engine fits to the results (its option surrogate)")
    initial_candidates = models.JSONField(
        default=list, blank=True,
        help_text="encoding indices evaluated first, in order (the engine's option initial_candidates)")
    # hardware-aware goals (nastune.objectives): [[name, "max"|"min"], ...] (the first is primary),
    # [{"name", "op", "bound"}, ...] and {objective: value} for the hypervolume
    objectives = models.JSONField(default=list, blank=True, help_text="[[name, max|min], ...]; first = primary")
    constraints = models.JSONField(default=list, blank=True, help_text="[{name, op, bound}, ...]")
    reference_point = models.JSONField(default=dict, blank=True, help_text="{objective: value} for the hypervolume")

    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    failure_reason = models.TextField(blank=True)
    best_value = models.FloatField(null=True, blank=True)
    best_index = models.IntegerField(null=True, blank=True)
    finished_count = models.PositiveIntegerField(default=0, help_text="evaluations finished so far (cursor)")
    n_asks = models.PositiveIntegerField(default=0, help_text="proposal steps taken by the engine")
    step_pending = models.BooleanField(default=False, help_text=(
        "a search step is waiting in the queue: more finishes need no other one (it reads them all when it "
        "starts), so each search holds at most one place in the step queue"))
    surrogate_checkpoint = models.FileField(upload_to=_search_upload_path, max_length=300, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def has_low_fidelity(self) -> bool:
        return self.lo_fi_cost is not None

    @property
    def minimizes(self) -> bool:
        return self.direction == self.Direction.MINIMIZE

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` in this search's direction (anything beats ``None``)."""
        if than is None:
            return True
        return value < than if self.minimizes else value > than

    @property
    def budget_fraction(self) -> float:
        return min(1.0, self.spent / self.budget) if self.budget else 0.0


class Evaluation(models.Model):
    """One training run (or lookup) of one encoding at one fidelity.

    ``attempt`` grows when a killed worker's evaluation is retried or a user retries a failed
    one; each attempt is its own row, and the engine sees only the last one (``retried`` marks
    the replaced ones), so nothing is counted twice. ``seq`` numbers finished evaluations in
    order of finishing; the dashboard polls for ``seq > cursor``.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Fidelity(models.TextChoices):
        HI = "hi", "high"
        LO = "lo", "low"

    search = models.ForeignKey(SearchInstance, on_delete=models.CASCADE, related_name="evaluations")
    encoding_index = models.PositiveIntegerField()
    fidelity = models.CharField(max_length=2, choices=Fidelity.choices)
    attempt = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    value = models.FloatField(null=True, blank=True)
    cost = models.FloatField(default=0.0, help_text="in hi-fi evaluation units")
    predicted_mean = models.FloatField(null=True, blank=True)
    predicted_std = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    gpu = models.CharField(max_length=40, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    log_file = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    seq = models.PositiveIntegerField(null=True, blank=True, help_text="order of finishing within the search")
    ask = models.PositiveIntegerField(null=True, blank=True, help_text="the engine's ask that proposed it")
    reason = models.CharField(max_length=16, blank=True, help_text="initial, acquisition, explore, ...")
    retried = models.BooleanField(default=False, help_text="a later attempt replaces this one")
    spent_after = models.FloatField(null=True, blank=True, help_text="search budget spent when this one finished")
    best_after = models.FloatField(null=True, blank=True, help_text="best hi-fi value when this one finished")
    objectives = models.JSONField(null=True, blank=True, help_text="every number a dict-valued evaluator returned")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["search", "encoding_index", "fidelity", "attempt"],
                                    name="unique_evaluation_attempt"),
        ]
        indexes = [
            models.Index(fields=["search", "seq"]),
            models.Index(fields=["search", "state"]),
            models.Index(fields=["search", "value"]),
            models.Index(fields=["search", "finished_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.encoding_index} {self.fidelity} attempt {self.attempt} ({self.state})"
