"""Search spaces as the web app stores them: uploads, profiling progress, the bundle file."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def _space_upload_path(space: SearchSpace, filename: str) -> str:
    return f"spaces/{space.owner_id}/{space.uid}/{filename}"


class SearchSpace(models.Model):
    """A user's search space: encodings, the ``encoding_to_net`` module, profile and surrogate.

    State machine: ``uploaded -> validating -> profiling -> pretraining -> ready``; any step
    may end in ``failed`` with ``failure_reason``. An imported bundle starts ``ready``.
    """

    class State(models.TextChoices):
        UPLOADED = "uploaded"
        VALIDATING = "validating"
        PROFILING = "profiling"
        PRETRAINING = "pretraining"
        READY = "ready"
        FAILED = "failed"

    class Source(models.TextChoices):
        UPLOAD = "upload"
        BUNDLE = "bundle"
        EXAMPLE = "example"

    uid = models.UUIDField(unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="search_spaces")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="short labels the owner filters by")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    example = models.CharField(max_length=40, blank=True, help_text="example module name when source=example")

    encodings_file = models.FileField(upload_to=_space_upload_path, max_length=300)
    n_encodings = models.PositiveIntegerField()
    encoding_length = models.PositiveIntegerField()
    feature_summary = models.JSONField(default=list, help_text="per encoding position: kind and values or range")

    module_source = models.TextField(blank=True, help_text="source of the module defining encoding_to_net")
    module_sha256 = models.CharField(max_length=64, blank=True)
    sample_input_shape = models.JSONField(default=list, help_text="shape of the random sample input, e.g. [1,3,32,32]")
    profile_metrics = models.JSONField(default=list, blank=True,
                                       help_text="metrics to measure when profiling (empty: all)")
    max_profiled = models.PositiveIntegerField(null=True, blank=True,
                                               help_text="profile a seeded random subset of this size (huge spaces)")

    state = models.CharField(max_length=16, choices=State.choices, default=State.UPLOADED, db_index=True)
    failure_reason = models.TextField(blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)

    metrics = models.JSONField(default=list, help_text="names of the profiled metrics")
    profile_file = models.FileField(upload_to=_space_upload_path, max_length=300, blank=True)
    profile_failures = models.PositiveIntegerField(default=0)
    transfers = models.JSONField(
        default=list, blank=True,
        help_text="searches whose results the space was pretrained on: [{name, search, best: [indices, best first]}]")
    surrogate_quality = models.JSONField(default=dict, blank=True,
                                         help_text="per metric: Kendall tau and a sample of predicted vs measured")
    bundle_file = models.FileField(upload_to=_space_upload_path, max_length=300, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.n_encodings} encodings, {self.state})"

    @property
    def progress_fraction(self) -> float:
        if self.state == self.State.READY:
            return 1.0
        return self.progress_done / self.progress_total if self.progress_total else 0.0


class ProfileChunk(models.Model):
    """A slice of a space's encodings profiled by one task; several workers share a space's chunks.

    ``result`` holds, per encoding of the slice, the metrics and (if it failed) the error, so an
    interrupted profiling run keeps every finished chunk.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    space = models.ForeignKey(SearchSpace, on_delete=models.CASCADE, related_name="profile_chunks")
    position = models.PositiveIntegerField()
    indices = models.JSONField(help_text="encoding indices profiled by this chunk")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["space", "position"], name="unique_chunk_position")]


class NetworkSummary(models.Model):
    """The built network of one encoding, described by a worker (the web process never builds one).

    Requested with a POST, computed by the ``profile`` queue in the sandbox, read with a GET.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    space = models.ForeignKey(SearchSpace, on_delete=models.CASCADE, related_name="network_summaries")
    encoding_index = models.PositiveIntegerField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    text = models.TextField(blank=True, help_text="str(net): the module tree")
    params = models.BigIntegerField(null=True, blank=True)
    params_test = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "encoding_index"], name="unique_network_summary")]
