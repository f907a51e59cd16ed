"""NASWeb Django project: settings, root URLs, the Celery app, the sandbox for user code.

Kept empty of imports so that ``python -m nasweb.sandbox`` (the child process that runs
user code) loads neither Django nor Celery; the Celery app is loaded by ``NaswebConfig.ready``.
"""
