"""Django app config of users' image datasets."""

from django.apps import AppConfig


class ImageDatasetsConfig(AppConfig):
    # Not called "datasets": that is the import name of the Hugging Face library this app relies on.
    name = "image_datasets"
    default_auto_field = "django.db.models.BigAutoField"
