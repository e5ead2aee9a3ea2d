"""Settings, read from the environment (12-factor).

Defaults are the safe production ones: DEBUG off, secure cookies, HSTS. The local
scripts in ``bin/`` set the development variables explicitly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp_constants

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("HITL_DEBUG", default=False)
SECRET_KEY = env.str("HITL_SECRET_KEY")
ALLOWED_HOSTS = env.list("HITL_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("HITL_CSRF_TRUSTED_ORIGINS", default=[])
# The public address used in links sent by email (invitations, password resets).
SITE_URL = env.str("HITL_SITE_URL", default="http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "hitl.admin_site.HitlAdminConfig",  # django.contrib.admin, scoped per request
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
    "simple_history",
    "allauth",
    "allauth.account",
    "csp",
    "hitl",
    "projects",
    "traces",
    "review",
    "datasets",
]

MIDDLEWARE = [
    "hitl.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "hitl.middleware.BodySizeLimitMiddleware",
    "hitl.replica.ReadYourWritesMiddleware",  # read-your-writes with read replicas
]

ROOT_URLCONF = "hitl.urls"
WSGI_APPLICATION = "hitl.wsgi.application"

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
                "projects.context_processors.organizations",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("HITL_DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# No JIT compilation: it pays off for long analytical queries, while ours are short and
# a plan whose estimated cost crosses jit_above_cost spent 150 to 250 ms compiling (the
# 10M-span trace list with a metadata filter, bench/README.md) to run a 40 ms query.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
# Server-side prepared statements where the code asks for one (``prepare=True``: the
# claim statement, hitl.sql_rows.prepared_cursor): Django opens psycopg connections
# with prepare_threshold None, under which psycopg ignores prepare=True and PostgreSQL
# parses and plans the claim on every call (bench/README.md, "Review queue claims"). A
# threshold no statement reaches prepares nothing else: the ORM binds parameters on the
# client and never prepares.
_PREPARE_ONLY_WHEN_ASKED = 2**31 - 1
_db_options.setdefault("prepare_threshold", _PREPARE_ONLY_WHEN_ASKED)
# Read replicas (hitl/replica.py): DATABASE_REPLICA_URLS, comma-separated, adds the
# aliases replica_1, replica_2, ...; only the heavy selectors read from them, and a
# replica that is down or lags more than HITL_REPLICA_MAX_LAG_SECONDS is skipped.
DATABASE_REPLICAS: list[str] = []
for _number, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    _replica = env.db_url_config(_url)
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["CONN_HEALTH_CHECKS"] = True
    _replica_options = _replica.setdefault("OPTIONS", {})
    _replica_options["options"] = f"{_replica_options.get('options', '')} -c jit=off".strip()
    _replica_options.setdefault("prepare_threshold", _PREPARE_ONLY_WHEN_ASKED)
    _replica_options.setdefault("connect_timeout", env.int("HITL_REPLICA_CONNECT_TIMEOUT", 2))
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica_{_number}")
DATABASE_ROUTERS = ["hitl.replica.ReplicaRouter"]
REPLICA_MAX_LAG_SECONDS = env.float("HITL_REPLICA_MAX_LAG_SECONDS", default=30.0)
REPLICA_PROBE_SECONDS = env.float("HITL_REPLICA_PROBE_SECONDS", default=2.0)
REPLICA_WAIT_SECONDS = env.float("HITL_REPLICA_WAIT_SECONDS", default=0.5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL")
# Redis is a cache and a broker, never the only copy of anything. The cache fails open
# (hitl/cache.py): an unreachable Redis reads as an empty cache, so throttles and login
# rate limits let calls through, and short socket timeouts keep a dead Redis cheap.
CACHES = {
    "default": {
        "BACKEND": "hitl.cache.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "hitl",
        "RETRY_AFTER": env.float("HITL_CACHE_RETRY_AFTER", default=5.0),
        "OPTIONS": {
            "socket_connect_timeout": env.float("HITL_REDIS_CONNECT_TIMEOUT", default=0.25),
            "socket_timeout": env.float("HITL_REDIS_TIMEOUT", default=0.5),
        },
    }
}
# Sessions live in PostgreSQL only: a Redis restart or outage signs nobody out (Django's
# cached_db engine raises when its cache write or delete fails).
SESSION_ENGINE = "hitl.sessions"  # Django's database sessions, read by a prepared statement

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [  # Django's and allauth's, the user read prepared
    "hitl.auth_backends.ModelBackend",
    "hitl.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("HITL_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Serve straight from the app folders when static files were not collected (tests, dev).
WHITENOISE_USE_FINDERS = env.bool("HITL_STATIC_USE_FINDERS", default=DEBUG)
# Served from the app folders, a file is looked up when it is asked for, not by scanning
# every app's static folder whenever the middleware is built (each test client builds it).
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "HITL_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# --- Security: production defaults, relaxed only by explicit variables ---
SECURE_SSL_REDIRECT = env.bool("HITL_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("HITL_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# A refused form (cookies gone mid-page) answers a page that offers to sign in again and
# says the review answers are kept in the browser, never Django's debug page.
CSRF_FAILURE_VIEW = "hitl.csrf.csrf_failure"
SECURE_HSTS_SECONDS = env.int("HITL_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django-csp): our own origin only. Pages
# carry no inline script, style element or style/on* attribute; the one inline script
# (the API docs' start-up, templates/drf_spectacular/swagger_ui.html) has the request's
# nonce, which the header names only on responses that used it. data: images are for
# the API docs' icons (Swagger UI's stylesheet draws them as data: SVGs). The browsable
# API adds style-src-attr 'unsafe-inline' to its own answers (hitl/api/renderers.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", csp_constants.NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# --- Email ---
EMAIL_CONFIG = env.email_url("HITL_EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_FILE_PATH = env.str("HITL_EMAIL_FILE_PATH", default=str(BASE_DIR / ".run" / "mail"))
DEFAULT_FROM_EMAIL = env.str("HITL_DEFAULT_FROM_EMAIL", default="hitl <noreply@localhost>")

# --- allauth: email login, mandatory verification, rate limits on the Redis cache ---
SITE_ID = 1
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "projects.adapters.AccountAdapter"
# Sign-up fixes an invitation's address; sign-in says "sign up first" to an invitee.
ACCOUNT_FORMS = {
    "signup": "projects.account_forms.InvitedSignupForm",
    "login": "projects.account_forms.InvitationAwareLoginForm",
}
# Without an invitation, signing up is closed unless this is set.
HITL_OPEN_SIGNUP = env.bool("HITL_OPEN_SIGNUP", default=False)
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if not DEBUG else "http"
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"

# --- REST framework ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "projects.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "hitl.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["hitl.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "hitl.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    # Unknown query parameters and invalid filter values answer 400 (hitl/api/filters.py).
    "DEFAULT_FILTER_BACKENDS": ["hitl.api.filters.StrictFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hitl.api.errors.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "hitl.api.metadata.ApiMetadata",
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("HITL_THROTTLE_USER", default="2000/min"),
        "api_key": env.str("HITL_THROTTLE_API_KEY", default="6000/min"),
        "ingest": env.str("HITL_THROTTLE_INGEST", default="3000/min"),
    },
    "DEFAULT_THROTTLE_CLASSES": ["hitl.api.throttling.CallerRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "hitl API",
    "DESCRIPTION": (
        "Human-in-the-loop evaluation for LLM applications. People authenticate with a "
        "session; machines send `Authorization: Bearer <project API key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    # One stable name per choice set, so clients see the same enum everywhere.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "projects.models.Role",
        "ApiKeyScopeEnum": "projects.models.ApiKeyScope",
        "RunStatusEnum": "traces.models.Status",
        "SpanKindEnum": "traces.models.SpanKind",
        "ScoreSourceEnum": "traces.models.ScoreSource",
        "ScoreDataTypeEnum": "traces.models.ScoreDataType",
        "FeedbackKindEnum": "traces.models.FeedbackKind",
        "ScoreTargetEnum": "review.models.ScoreTarget",
        "AssignmentStrategyEnum": "review.models.AssignmentStrategy",
        "ItemTargetEnum": "review.models.ItemTarget",
        "ItemSourceEnum": "review.models.ItemSource",
        "ItemStatusEnum": "review.models.ItemStatus",
        "SuggestionModeEnum": "review.models.SuggestionMode",
        "BoardStatusEnum": "review.models.BoardStatus",
        "AuditStatusEnum": "review.models.AuditStatus",
        "AssignmentStateEnum": "review.models.AssignmentState",
        "AdjudicationKindEnum": "review.models.AdjudicationKind",
        "RoutingSignalEnum": "review.models.RoutingSignal",
        "RoutingTargetEnum": "review.models.RoutingTarget",
        "AlertKindEnum": "review.quality.models.AlertKind",
        "DestinationKindEnum": "projects.models.DestinationKind",
        "PersonalChannelEnum": "projects.models.PersonalChannel",
        "ExportFormatEnum": "datasets.models.ExportFormat",
        "ImportFormatEnum": [("jsonl", "jsonl"), ("csv", "csv")],
    },
    # Swagger UI is served from the sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Request bodies larger than this answer 413 (ingestion endpoints set their own limit).
HITL_MAX_BODY_BYTES = env.int("HITL_MAX_BODY_BYTES", default=1024 * 1024)
HITL_INVITATION_TTL = timedelta(days=env.int("HITL_INVITATION_TTL_DAYS", default=7))
# Stored files (hitl/storage.py; docs/SCALING.md, "Shared storage"): the "exports"
# storage, written by a worker and served by any web process. HITL_FILE_STORAGE=filesystem
# (default): under HITL_EXPORT_DIR, an absolute path every web and worker process shares
# (one machine, or a volume all mount). =s3: an S3-compatible bucket (django-storages,
# loaded only then); downloads redirect to a signed URL that expires, or stream through
# the web process with HITL_S3_SIGNED_URLS=false. Imports may upload files up to the
# second limit (read in the request, never stored).
HITL_EXPORT_DIR = env.path("HITL_EXPORT_DIR", default=BASE_DIR / ".run" / "exports")
HITL_FILE_STORAGE = env.str("HITL_FILE_STORAGE", default="filesystem")
HITL_S3_SIGNED_URLS = env.bool("HITL_S3_SIGNED_URLS", default=True)
HITL_S3_URL_EXPIRES_SECONDS = env.int("HITL_S3_URL_EXPIRES_SECONDS", default=300)
if HITL_FILE_STORAGE == "s3":
    if not env.str("HITL_S3_BUCKET", default="").strip():
        raise environ.ImproperlyConfigured("HITL_FILE_STORAGE=s3 needs HITL_S3_BUCKET")
    STORAGES["exports"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("HITL_S3_BUCKET"),
            "location": env.str("HITL_S3_PREFIX", default="exports"),
            # Empty: AWS itself; else MinIO, Ceph, R2 ... (e.g. http://minio:9000).
            "endpoint_url": env.str("HITL_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("HITL_S3_REGION", default="") or None,
            # Empty: boto3's own chain (AWS_* variables, an instance or pod role).
            "access_key": env.str("HITL_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("HITL_S3_SECRET_ACCESS_KEY", default="") or None,
            "addressing_style": env.str("HITL_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
            "querystring_auth": True,
            "querystring_expire": HITL_S3_URL_EXPIRES_SECONDS,
            "file_overwrite": True,
            "default_acl": None,
        },
    }
elif HITL_FILE_STORAGE == "filesystem":
    STORAGES["exports"] = {"BACKEND": "hitl.storage.ExportDirStorage"}
else:
    raise environ.ImproperlyConfigured(f"HITL_FILE_STORAGE={HITL_FILE_STORAGE!r}: filesystem or s3")
HITL_IMPORT_MAX_BYTES = env.int("HITL_IMPORT_MAX_BYTES", default=256 * 1024 * 1024)

# --- Notifications: Slack and signed webhooks (docs/notifications.md) ---
# Local receivers a destination may name (tests, staging): exact host:port pairs, e.g.
# "127.0.0.1:8025,localhost:9000". Only a URL naming one of them may resolve to a loopback
# or private address (or use plain http for Slack); metadata and link-local never may.
HITL_WEBHOOKS_ALLOW_HOSTS = env.list("HITL_WEBHOOKS_ALLOW_HOSTS", default=[])
# Every request: connecting may take this long, the whole request at most the total.
HITL_WEBHOOKS_CONNECT_TIMEOUT = env.float("HITL_WEBHOOKS_CONNECT_TIMEOUT", default=3.0)
HITL_WEBHOOKS_TIMEOUT = env.float("HITL_WEBHOOKS_TIMEOUT", default=10.0)
# A destination failing this long (no success in between) is disabled and its owner told.
HITL_WEBHOOKS_DISABLE_AFTER = timedelta(
    hours=env.float("HITL_WEBHOOKS_DISABLE_AFTER_HOURS", default=24.0)
)
# After a secret rotation the old secret keeps signing beside the new one this long.
HITL_WEBHOOKS_SECRET_OVERLAP = timedelta(
    hours=env.float("HITL_WEBHOOKS_SECRET_OVERLAP_HOURS", default=24.0)
)
# Slack incoming webhooks: at most this many messages a second per webhook, after a burst.
HITL_SLACK_RATE_PER_SECOND = env.float("HITL_SLACK_RATE_PER_SECOND", default=1.0)
HITL_SLACK_BURST = env.int("HITL_SLACK_BURST", default=3)
# A worker waits for a send slot at most this long; a later slot is a scheduled message.
HITL_SLACK_MAX_SLEEP = env.float("HITL_SLACK_MAX_SLEEP", default=1.0)

# --- Celery on Redis ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
}
CELERY_TASK_ALWAYS_EAGER = False
# Work that must not be lost goes through the outbox (hitl/outbox.py): a row written with
# its cause, published after commit, and republished by the relay until done.
HITL_OUTBOX_RELAY_SECONDS = env.float("HITL_OUTBOX_RELAY_SECONDS", default=5.0)
# A published message never started after this long is published again (the broker may
# have lost it); running a message twice does nothing the second time.
HITL_OUTBOX_REPUBLISH_AFTER = timedelta(
    seconds=env.int("HITL_OUTBOX_REPUBLISH_AFTER_SECONDS", default=300)
)
# Running work is leased by its database session (the run's row lock): a worker process
# that dies loses it at once, a worker host that vanishes within this many seconds
# (PostgreSQL's TCP keepalives on the worker's session); then the relay publishes the
# cut-off message again. 0 leaves the keepalives to the system's defaults.
HITL_OUTBOX_LEASE_SECONDS = env.int("HITL_OUTBOX_LEASE_SECONDS", default=15)
# A worker commits its claim, then locks the row: a claim younger than this that holds
# no lock is a run about to start, not one cut off.
HITL_OUTBOX_CLAIM_GRACE = timedelta(
    seconds=env.float("HITL_OUTBOX_CLAIM_GRACE_SECONDS", default=2.0)
)
HITL_OUTBOX_KEEP_DONE = timedelta(days=env.int("HITL_OUTBOX_KEEP_DONE_DAYS", default=7))
# Agreement reports (review.quality.services.agreement): bootstrap resamples per figure.
# Submissions coalesce into one waiting computation per queue, never deferred.
HITL_AGREEMENT_RESAMPLES = env.int("HITL_AGREEMENT_RESAMPLES", default=1000)
# Trace retention in days for projects without their own (traces.TraceRetention; 0:
# kept). The beat task deletes expired traces and drops the months nothing keeps.
HITL_TRACE_RETENTION_DAYS = env.int("HITL_TRACE_RETENTION_DAYS", default=0)
# Alerts: agreement or alignment whose rolling mean over this many reports falls under
# the threshold (issue 9; a per-project threshold is not stored yet).
HITL_QUALITY_ALERT_THRESHOLD = env.float("HITL_QUALITY_ALERT_THRESHOLD", default=0.8)
HITL_QUALITY_ALERT_WINDOW = env.int("HITL_QUALITY_ALERT_WINDOW", default=3)
CELERY_BEAT_SCHEDULE: dict = {
    # Running accuracy of reviewers on gold items mixed into live queues.
    "review-gold-accuracy-sweep": {"task": "review.gold_accuracy_sweep", "schedule": 300.0},
    # Metric alignment reports, one per mapping per hour: its drift over time.
    "review-alignment-sweep": {"task": "review.alignment_sweep", "schedule": 3600.0},
    # Span partitions for this month and the next three; retention drops expired ones.
    "traces-maintain-span-partitions": {
        "task": "traces.maintain_span_partitions",
        "schedule": 6 * 3600.0,
        "options": {"expires": 3600.0},
    },
    # Thread rules (docs/routing.md): conversations that ended (idle) route without new
    # traces; late feedback on a recent thread is seen.
    "review-route-threads": {
        "task": "review.route_threads",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Claims expire overdue leases lazily per queue; this sweeps queues nobody claims from.
    "review-expire-leases": {"task": "review.expire_leases", "schedule": 60.0},
    # Relay runs that piled up while no worker ran are dropped, not run in a burst.
    "hitl-outbox-relay": {
        "task": "hitl.outbox.relay",
        "schedule": HITL_OUTBOX_RELAY_SECONDS,
        "options": {"expires": HITL_OUTBOX_RELAY_SECONDS * 2},
    },
    "hitl-outbox-prune": {"task": "hitl.outbox.prune", "schedule": 3600.0},
    # Agreement of queues whose answers changed since their latest reports.
    "review-agreement-sweep": {
        "task": "review.agreement_sweep",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "hitl.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("HITL_LOG_LEVEL", default="INFO")},
}
