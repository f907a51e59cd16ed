"""Django settings for NASWeb, read entirely from environment variables.

Every variable is listed with its default and meaning in README.md ("Configuration").
The defaults serve one machine with nothing installed: SQLite and a filesystem broker
under ``var/``.
"""

from __future__ import annotations

from pathlib import Path

from nasweb.config import (
    env_bool,
    env_broker,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_path,
    env_str,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("NASWEB_VAR_DIR", BASE_DIR / "var")

SECRET_KEY = secret_key("SECRET_KEY", VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "nasweb",
    "spaces",
    "searches",
    "image_datasets",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "nasweb.urls"
WSGI_APPLICATION = "nasweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", VAR_DIR / "nasweb.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = env_path("NASWEB_MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders too, so tests and `manage.py` commands work without collectstatic.
WHITENOISE_USE_FINDERS = True
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # vendor/plotly.min.js from the pinned plotly package: the dashboard never loads a CDN
    "frontend.staticfiles.PlotlyFinder",
]

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API call gets 401 with "WWW-Authenticate: Token", not a bare 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "nasweb.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    # JSON bodies from anyone (the token endpoint is anonymous): too deep or too long numbers -> 400
    "DEFAULT_PARSER_CLASSES": ["nasweb.safe_json.BoundedJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    # Only the token endpoint is throttled (see nasweb.api.TokenApi): per client address and per web
    # process (Django's default in-memory cache), enough to make guessing passwords slow.
    "DEFAULT_THROTTLE_RATES": {"anon": env_str("NASWEB_TOKEN_RATE", "20/min")},
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NASWeb API",
    "DESCRIPTION": "Search spaces, searches and evaluations of the NASWeb neural-architecture-tuning service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Uploads are documented as binary files; input and output shapes are separate components.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "SpaceStateEnum": "spaces.models.SearchSpace.State",
        "NetworkSummaryStateEnum": "spaces.models.NetworkSummary.State",
        "SearchStateEnum": "searches.models.SearchInstance.State",
        "EvaluationStateEnum": "searches.models.Evaluation.State",
    },
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_broker("CELERY_BROKER_URL")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    # A message a dead worker had taken comes back after this many seconds (acks_late).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "search"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600, minimum=1)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- NASWeb limits ------------------------------------------------------------------------------
NASWEB_MAX_UPLOAD_MB = env_int("NASWEB_MAX_UPLOAD_MB", 200, minimum=1)
# An imported bundle's members may unpack to this much in all (checked before anything is unpacked).
NASWEB_MAX_BUNDLE_MB = env_int("NASWEB_MAX_BUNDLE_MB", 1024, minimum=1)
NASWEB_MAX_ENCODINGS = env_int("NASWEB_MAX_ENCODINGS", 2_000_000, minimum=1)
NASWEB_MAX_MODULE_CHARS = env_int("NASWEB_MAX_MODULE_CHARS", 200_000, minimum=100)
NASWEB_SANDBOX_MEMORY_MB = env_int("NASWEB_SANDBOX_MEMORY_MB", 8192, minimum=256)
NASWEB_SANDBOX_CPU_S = env_int("NASWEB_SANDBOX_CPU_S", 3600, minimum=1)
NASWEB_SANDBOX_WALL_S = env_float("NASWEB_SANDBOX_WALL_S", 1800.0, minimum=1.0)
NASWEB_SANDBOX_PROCESSES = env_int("NASWEB_SANDBOX_PROCESSES", 512, minimum=16)
# Read again by usercode.sandbox in each worker; checked here so that a typo stops start-up.
NASWEB_SANDBOX = env_choice("NASWEB_SANDBOX", "bwrap", ("bwrap", "none"))
# Server-side image datasets must lie in one of these folders (the sandbox is shown them read-only).
NASWEB_DATASET_DIRS = [Path(p) for p in env_list("NASWEB_DATASET_DIRS", [str(VAR_DIR / "datasets")])]
# Bounds on an uploaded dataset archive once unpacked (a small zip can unpack to terabytes).
NASWEB_DATASET_MAX_MB = env_int("NASWEB_DATASET_MAX_MB", 2000, minimum=1)
NASWEB_DATASET_MAX_FILES = env_int("NASWEB_DATASET_MAX_FILES", 200_000, minimum=10)
NASWEB_MAX_ATTEMPTS = env_int("NASWEB_MAX_ATTEMPTS", 3, minimum=1)
# Sharing the workers (searches.scheduling): each free worker takes the next evaluation in fair order
# (round-robin over users, then over each user's searches); false = first come, first served.
NASWEB_FAIR_SHARE = env_bool("NASWEB_FAIR_SHARE", True)
# With fair share: most evaluations one user has running at once, over all their searches (0 = no limit).
NASWEB_MAX_RUNNING_PER_USER = env_int("NASWEB_MAX_RUNNING_PER_USER", 0, minimum=0)
# A running evaluation or profiling chunk whose heartbeat (every 2 s, nasweb.recovery.HEARTBEAT_S) is
# older than this is taken to be lost; with a watchdog round every 3 s a dead worker's work is sent
# again within about 13 s (the issue asked for 20).
NASWEB_HEARTBEAT_STALE_S = env_int("NASWEB_HEARTBEAT_STALE_S", 10, minimum=3)
NASWEB_RECOVERY_INTERVAL_S = env_float("NASWEB_RECOVERY_INTERVAL_S", 3.0, minimum=0.0)
NASWEB_GPUS = env_str("NASWEB_GPUS", "")
NASWEB_TORCH_THREADS = env_int("NASWEB_TORCH_THREADS", 1, minimum=1)
# The table ships with the project (examples/nb201/data/PROVENANCE.md); the variable points at another copy.
NASWEB_NB201_CSV = env_path("NASWEB_NB201_CSV", BASE_DIR / "examples" / "nb201" / "data" / "nb201_merged.csv.xz")
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
