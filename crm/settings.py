"""Settings come from the environment; the defaults are the production-safe ones.

`make run` sets DEBUG=1 for development. Outside DEBUG a SECRET_KEY must be given.
"""
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
TESTING = env_bool("CRM_TESTING") or "pytest" in sys.modules
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "development-only-not-secret-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "django_filters",
    "django_tables2",
    "import_export",
    "simple_history",
    "django_countries",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "csp",
    "crm",
    "channels",
    "accounts",
    "activities",
    "customers",
    "contacts",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # A NUL in any GET or POST value is a 400 before a view can hand it to the database.
    "crm.middleware.RefuseNulMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as axes requires: it turns a lockout flagged during the view into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        # A kept connection the server dropped (restart, failover, a terminated backend) is
        # replaced before its first query of a request or worker poll; without the check the
        # job worker's next poll raised and ended the worker for good.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite holds the write lock for the whole import transaction; wait rather than fail,
    # and let pages (the job page polling) read beside the worker's writes (WAL). IMMEDIATE:
    # a transaction takes the write lock when it begins; one that read first and asked for it
    # later got "database is locked" at once, without waiting, when another import was writing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, init_command="PRAGMA journal_mode=WAL;",
                                                          transaction_mode="IMMEDIATE")

AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username and address is refused before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: every page needs a login

# Argon2 for new and changed passwords; the others only verify older hashes, which are
# rehashed with Argon2 at the user's next login. (tests/conftest.py swaps in a fast hasher.)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes), for /login/ and the admin's login alike: a username is
# locked from one address after CRM_LOGIN_FAILURES failed attempts, for
# CRM_LOGIN_COOLOFF_MINUTES (each further attempt while locked starts the wait again). The
# pair, not the address alone, so colleagues behind one office NAT are not locked out with
# him, and not the username alone, so nobody elsewhere can lock a user out of his account.
# Administrators unlock early by deleting the access attempt in the admin (Axes section).
# Off in the test suite, which logs in with Client.login (no request, which axes needs);
# tests of the throttling turn it on.
AXES_ENABLED = env_bool("CRM_LOGIN_THROTTLE", not TESTING)
AXES_FAILURE_LIMIT = int(os.environ.get("CRM_LOGIN_FAILURES", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("CRM_LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login forgets the earlier typos
AXES_LOCKOUT_CALLABLE = "crm.auth.lockout_response"  # the lockout page in the product's look
AXES_VERBOSE = False
# Behind reverse proxies (a load balancer, nginx) every login would come from their address:
# CRM_PROXY_COUNT of them append the client's address to X-Forwarded-For (crm.auth.client_ip).
CRM_PROXY_COUNT = int(os.environ.get("CRM_PROXY_COUNT", 0))
AXES_CLIENT_IP_CALLABLE = "crm.auth.client_ip"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads, exports and job progress go through the default storage, so web servers and
# workers on different machines share them: the file system (MEDIA_ROOT) by default, or an
# S3-compatible bucket with CRM_STORAGE_BACKEND=storages.backends.s3.S3Storage (pip install
# '.[s3]'; AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL and the AWS_* keys from the environment).
STORAGES = {
    "default": {"BACKEND": os.environ.get("CRM_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if DEBUG or TESTING:
    # Development serves static files from the finders; no collectstatic folder is expected.
    warnings.filterwarnings("ignore", message="No directory at")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
for _name in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME", "AWS_ACCESS_KEY_ID",
              "AWS_SECRET_ACCESS_KEY"):
    if os.environ.get(_name):
        globals()[_name] = os.environ[_name]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "crm@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))

# Uploads: a CSV import may be large, but not unbounded.
CRM_IMPORT_MAX_BYTES = int(os.environ.get("CRM_IMPORT_MAX_BYTES", 50 * 1024 * 1024))
# Grids count exactly up to this many rows; above it (PostgreSQL) they show the planner's estimate.
CRM_EXACT_COUNT_LIMIT = int(os.environ.get("CRM_EXACT_COUNT_LIMIT", 1_000))
# Grid page numbers reach this many rows (page 1,000 of 25); further down, filter or sort.
CRM_GRID_MAX_ROWS = int(os.environ.get("CRM_GRID_MAX_ROWS", 25_000))
CRM_IMPORT_BATCH_SIZE = 1000  # rows validated and written together (the one batch size)
CRM_MAX_TREE_DEPTH = int(os.environ.get("CRM_MAX_TREE_DEPTH", 10))  # levels of a subsidiary tree, the root being 1
# Where approvers' emailed links point when no web request tells (demo data, the expiry job).
CRM_BASE_URL = os.environ.get("CRM_BASE_URL", "http://127.0.0.1:8000")
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# An upload past CRM_IMPORT_MAX_BYTES is skipped while the request is read, never stored.
FILE_UPLOAD_HANDLERS = ["crm.uploads.SizeLimitUploadHandler",
                        "django.core.files.uploadhandler.MemoryFileUploadHandler",
                        "django.core.files.uploadhandler.TemporaryFileUploadHandler"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000  # mass actions post one field per selected row

# Background jobs (imports, large exports): the database backend and `manage.py db_worker`
# by default; tests run them at once, in the request. CRM_TASKS_BACKEND selects another
# backend (e.g. a Celery one) without code changes.
TASKS = {
    "default": {
        "BACKEND": os.environ.get(
            "CRM_TASKS_BACKEND",
            "django_tasks.backends.immediate.ImmediateBackend" if TESTING
            else "django_tasks_db.DatabaseBackend",
        ),
    }
}
# Exports of more rows than this run as a job; smaller ones download at once.
CRM_EXPORT_JOB_ROWS = int(os.environ.get("CRM_EXPORT_JOB_ROWS", 10_000))
# A running job whose worker has shown no sign of life for this long is marked failed.
CRM_JOB_STALE_SECONDS = int(os.environ.get("CRM_JOB_STALE_SECONDS", 300))

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"
DJANGO_TABLES2_PAGE_RANGE = 8
IMPORT_EXPORT_SKIP_ADMIN_LOG = True  # admin log writes one row per imported record
# Files between an import's preview and its confirmation, in the app and the admin alike:
# Django's default storage (shared by every web server and worker), folder imports/.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "crm.services.UploadStore"
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not (DEBUG or TESTING))
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 0 if DEBUG or TESTING else 31536000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp), the same in every environment so the tests and the
# browser tests see what production sends: scripts, styles, fonts and XHR from this site
# only, no inline script, style attribute or handler (they live in static/), no plugins,
# no framing, forms posting only here. Bootstrap's CSS draws some icons as data: SVGs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
