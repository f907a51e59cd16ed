from django.apps import AppConfig


class NaswebConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nasweb"
    verbose_name = "NASWeb"
