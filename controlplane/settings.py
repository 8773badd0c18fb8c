"""Django settings, all from the environment (see docs/configuration.md).

Defaults give the embedded mode: a SQLite file and a filesystem Celery broker in
the data folder, so one command runs everything on a fresh machine. Production
sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis), DEBUG=false and
SECRET_KEY (or SECRET_KEY_FILE).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from controlplane.env import (
    ConfigError,
    env_bool,
    env_int,
    env_list,
    env_proxy_ssl_header,
    env_regex_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")) or "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ConfigError("SECRET_KEY: must be at least 32 characters")
        return key
    if not DEBUG:
        raise ConfigError("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off")
    # Development only: generated once and kept, so sessions survive restarts.
    path = DATA_DIR / "dev_secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_URL = (env_str("PUBLIC_URL", "http://127.0.0.1:8000") or "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (our CSP allows no CDN)
    "django_celery_beat",
    "controlplane",
    "slo",
    "routing",
    "web",  # the browser UI and `manage.py serve`: the top layer, over slo and routing
]

MIDDLEWARE = [
    "controlplane.middleware.RequestIdMiddleware",
    # first after the request id: the HTTPS redirect and HSTS apply to every answer, the 304 fast path's too
    "django.middleware.security.SecurityMiddleware",
    "controlplane.middleware.RefuseNulMiddleware",
    # gateways' config polls that changed nothing (304) skip the rest of the stack
    "routing.api.fastpath.ConfigPollFastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "controlplane.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "web.timezones.TimeZoneMiddleware",  # pages in the user's zone; the API stays in UTC
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "controlplane.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlplane.context_processors.roles",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'controlplane.sqlite3'}") or "",
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ConfigError(f"DATABASE_URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode runs web, worker and beat against one file: wait for locks.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT_S", 5
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "staticfiles")) or "")
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
# The third finder serves Plotly's JS from the installed package (no CDN, no vendored copy).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "web.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Security headers and cookies. HTTPS-only flags come on when DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# HTTPS (docs/configuration.md): with DEBUG off, plain-HTTP requests are redirected to https except
# the paths in SECURE_REDIRECT_EXEMPT (a kube probe of /healthz, an in-cluster /metrics scrape), and
# HTTPS answers carry HSTS. Behind a TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the header
# the proxy sets (and strips from clients) to say the original request was HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = env_regex_list("SECURE_REDIRECT_EXEMPT", [r"^healthz/?$", r"^metrics/?$"])
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 86400, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE_S", 12 * 3600, minimum=300)

# Email: console/file by default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    EMAIL_FILE_PATH = DATA_DIR / "mail"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "slo-controlplane@localhost")

# Client addresses (failure limits, audit): REMOTE_ADDR, unless this many reverse proxies stand in
# front and each appends the address it saw to TRUSTED_PROXY_HEADER (controlplane.throttling).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
TRUSTED_PROXY_HEADER = env_str("TRUSTED_PROXY_HEADER", "X-Forwarded-For") or "X-Forwarded-For"

# REST API: deny by default. Every view declares the roles it allows.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.auth.BearerTokenAuthentication",
        "controlplane.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.permissions.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # the limits of controlplane.safeload (nesting depth, no NUL) on every body
    "DEFAULT_PARSER_CLASSES": [
        "controlplane.api.parsers.JSONParser",
        "controlplane.api.parsers.FormParser",
        "controlplane.api.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["controlplane.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "token": env_str("THROTTLE_TOKEN", "6000/min"),
        "ingest": env_str("THROTTLE_INGEST", "600/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # DRF's own address lookup (anonymous throttles) trusts X-Forwarded-For only this far
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inference SLO control plane API",
    "DESCRIPTION": "SLOs, telemetry, error budgets, routing documents, fleet delivery and releases.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["controlplane.permissions.AnyRole"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # One name per choice set; fields of the same name with different choices (kind, state, tier,
    # trigger) would otherwise get hash-suffixed names and a warning on every schema generation.
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": ["edge", "private_cloud", "public_cloud"],
        "GatewayTierEnum": "routing.models.fleet.TIER_CHOICES",
        "GatewayKindEnum": "routing.models.fleet.KIND_CHOICES",
        "ReleaseKindEnum": "routing.models.releases.Release.KIND_CHOICES",
        "ReleaseStateEnum": "routing.models.releases.Release.STATE_CHOICES",
        "NotificationChannelKindEnum": "slo.models.budget.CHANNEL_KINDS",
        "SeverityEnum": "slo.models.budget.SEVERITIES",
        "ReportTriggerEnum": "slo.models.reports.TRIGGERS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.api.schema.document_error_responses",
    ],
}

# Caches: the throttles count here. Redis when given (shared across gunicorn workers).
CACHE_URL = env_str("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# The gateways' config poll answers 304 from this Redis when it can (routing.fleet.pollcache).
FLEET_POLL_CACHE = env_bool("FLEET_POLL_CACHE", True)
# In front of Django's WSGI handler (controlplane.wsgi): a cached 304 skips the handler and middleware,
# and so do a gateway's telemetry push and heartbeat (the same steps as their views, answered alike;
# `false` sends them through the whole stack, e.g. to compare)
WSGI_FAST_PATHS = ["routing.api.fastpath.ConfigPollWSGI"]
if env_bool("GATEWAY_FAST_PATH", True):
    WSGI_FAST_PATHS.append("routing.api.gateway_fastpath.GatewayWritesWSGI")

# Celery: lose nothing. Late acks + reject on worker loss re-queue a task whose worker
# died; tasks are written to be idempotent so a second run is harmless.
# The filesystem transport ignores the host; naming one spares a kombu warning per process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than the hard time limit, so a slow task is never handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
elif not CELERY_BROKER_URL.startswith(("amqp://", "pyamqp://", "memory://")):
    raise ConfigError(f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: unsupported scheme")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT_S", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT_S", 300, minimum=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ConfigError("CELERY_TASK_SOFT_TIME_LIMIT_S must be below CELERY_TASK_TIME_LIMIT_S")

# Domain settings.
TELEMETRY_MINUTE_RETENTION_DAYS = env_int("TELEMETRY_MINUTE_RETENTION_DAYS", 8, minimum=1)
TELEMETRY_HOUR_RETENTION_DAYS = env_int("TELEMETRY_HOUR_RETENTION_DAYS", 400, minimum=1)
# Day partitions of the minute tables created ahead of time (slo/telemetry/partitions.py).
TELEMETRY_PARTITIONS_AHEAD_DAYS = env_int("TELEMETRY_PARTITIONS_AHEAD_DAYS", 7, minimum=1)
# Per-request decision records gateways push (docs/decisions.md); bulky, so kept well short of SLI minutes.
DECISION_RECORD_RETENTION_DAYS = env_int("DECISION_RECORD_RETENTION_DAYS", 7, minimum=1)
# Capacity recommendations from gateway health (docs/capacity.md).
CAPACITY_WINDOW_S = env_int("CAPACITY_WINDOW_S", 60, minimum=1)
CAPACITY_LOOKBACK_S = env_int("CAPACITY_LOOKBACK_S", 900, minimum=60)
CAPACITY_CLEAR_AFTER_S = env_int("CAPACITY_CLEAR_AFTER_S", 180, minimum=0)
CAPACITY_HEALTH_RETENTION_DAYS = env_int("CAPACITY_HEALTH_RETENTION_DAYS", 3, minimum=1)
EVALUATION_INTERVAL_S = env_int("EVALUATION_INTERVAL_S", 60, minimum=5)
# Seconds after a minute ends before its evaluation syncs and evaluates (slo/tasks/budget.py): time for
# gateways' pushes of that minute to arrive (reference gateways push 1-11 s after it; docs/gateway.md).
BUDGET_EVALUATION_GRACE_S = env_int("BUDGET_EVALUATION_GRACE_S", 15, minimum=0)
if BUDGET_EVALUATION_GRACE_S >= 60:
    raise ConfigError("BUDGET_EVALUATION_GRACE_S must be below 60")
API_TOKEN_DEFAULT_EXPIRY_DAYS = env_int("API_TOKEN_DEFAULT_EXPIRY_DAYS", 90, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "controlplane.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
