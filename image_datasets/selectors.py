"""Reads of users' image datasets. Every read is scoped to an owner; someone else's dataset is "not found"."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from image_datasets.models import ImageDataset
from nasweb.errors import NotFoundError


def image_dataset_list(*, owner: Any) -> QuerySet[ImageDataset]:
    return ImageDataset.objects.filter(owner=owner).order_by("-created_at")


def image_dataset_get(*, owner: Any, dataset_id: Any) -> ImageDataset:
    try:
        return ImageDataset.objects.get(owner=owner, id=int(dataset_id))
    except (ImageDataset.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(None, "no such dataset") from None


def image_dataset_choices(*, owner: Any) -> list[tuple[str, str]]:
    """``(id, label)`` of the owner's ready datasets, for the New search form."""
    return [(str(dataset.id), f"{dataset.name} ({dataset.n_classes} classes, {dataset.n_images:,} images)")
            for dataset in image_dataset_list(owner=owner).filter(state=ImageDataset.State.READY)]
