from django.apps import AppConfig


class NaswebConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nasweb"
    verbose_name = "NASWeb"

    def ready(self) -> None:
        # Binds @shared_task to our app in every process that sends tasks (web server, shell).
        from nasweb import celery  # noqa: F401
