"""A user's image dataset as stored: the uploaded archive while it is checked, then a checked dataset folder."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def _archive_upload_path(dataset: ImageDataset, filename: str) -> str:
    return f"datasets/{dataset.owner_id}/{dataset.uid}/{filename}"


class ImageDataset(models.Model):
    """An uploaded image-classification dataset.

    State machine: ``validating -> ready`` or ``validating -> failed`` (with ``failure_reason``). A worker
    unpacks the archive with bounds, checks it (classes, split sizes, image shapes) and writes a Hugging
    Face ``save_to_disk`` folder (splits ``train`` and ``validation``; columns ``image`` and ``label``) into
    the first ``NASWEB_DATASET_DIRS`` folder, where the sandbox may read it. The archive is deleted then.
    """

    class State(models.TextChoices):
        VALIDATING = "validating"
        READY = "ready"
        FAILED = "failed"

    class Format(models.TextChoices):
        UNKNOWN = "", "not known yet"
        CLASS_FOLDERS = "class_folders", "class folders of images"
        SAVED_DATASET = "saved_dataset", "datasets save_to_disk folder"
        PARQUET = "parquet", "parquet files"

    uid = models.UUIDField(unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="image_datasets")
    name = models.CharField(max_length=120)
    archive = models.FileField(upload_to=_archive_upload_path, max_length=300, blank=True)
    archive_name = models.CharField(max_length=255, blank=True, help_text="the uploaded file's name")
    archive_bytes = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.VALIDATING, db_index=True)
    failure_reason = models.TextField(blank=True)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.UNKNOWN, blank=True)
    folder = models.CharField(max_length=500, blank=True, help_text="the checked save_to_disk folder (ready only)")
    class_names = models.JSONField(default=list, blank=True)
    split_sizes = models.JSONField(default=dict, blank=True, help_text="images per split: train, validation")
    image_shape = models.JSONField(default=list, blank=True, help_text="height, width, channels of every image")
    heartbeat_at = models.DateTimeField(null=True, blank=True,
                                        help_text="last sign of life of the worker checking it (null: not started)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="image_dataset_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_images(self) -> int:
        return int(sum(self.split_sizes.values())) if self.split_sizes else 0
