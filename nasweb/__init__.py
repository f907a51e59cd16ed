"""NASWeb Django project: settings, root URLs, the Celery app and the WSGI/ASGI entry points."""

from nasweb.celery import app as celery_app

__all__ = ["celery_app"]
