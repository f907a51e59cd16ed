"""NASWeb Django project: settings, root URLs, the Celery app.

Kept empty of imports; the Celery app is loaded by ``NaswebConfig.ready``.
"""
