"""Settings of the Django adapter tests: SQLite by default, PostgreSQL with CS_TEST_DB=postgres.

``CS_TEST_DB_NAME`` names an existing database to use as is (the child processes of the
two-process test point it at the parent's test database).
"""

import os
import tempfile

VENDOR = os.environ.get("CS_TEST_DB", "sqlite")
_EXISTING = os.environ.get("CS_TEST_DB_NAME")

if VENDOR == "postgres":
    _db = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _EXISTING or "test",
        "USER": os.environ.get("CS_TEST_PG_USER", "postgres"),
        "HOST": os.environ.get("CS_TEST_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CS_TEST_PG_PORT", "5432"),
        # One test database per run, so parallel runs on one server do not collide.
        "TEST": {"NAME": f"test_creative_services_{os.getpid()}"},
    }
else:
    _path = os.path.join(tempfile.gettempdir(), f"cs_django_test_{os.getpid()}.sqlite3")
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _EXISTING or _path,
        "TEST": {"NAME": _path},
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }

DATABASES = {"default": _db}
# The batched tracker's spool: one folder per run; child processes that must share it (a killed
# writer's leftovers) are given the parent's through CS_TEST_SPOOL.
CREATIVE_SERVICES_USAGE_SPOOL = os.environ.get("CS_TEST_SPOOL") or os.path.join(
    tempfile.gettempdir(), f"cs_django_spool_{os.getpid()}"
)
SECRET_KEY = "creative-services-tests-only"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "creative_services.contrib.django",
    "contrib.django.legacyapp",
    "contrib.django.bfagentapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "contrib.django.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Set explicitly: the test apps install models named Llms, which would otherwise raise W008 and
# make an empty shipped table an error (tests/contrib/django/test_compat.py unsets it).
CREATIVE_SERVICES_LLM_MODEL = "creative_services.LLMModel"
CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL = float(os.environ.get("CS_TEST_CHECK_INTERVAL", "0.2"))

# The response cache tests: "default" is per process; "redis" is shared across processes (a key
# prefix of this run, so parallel runs and the SQLite and PostgreSQL children never collide).
REDIS_URL = os.environ.get("CS_TEST_REDIS_URL", "redis://127.0.0.1:6379/")
REDIS_KEY_PREFIX = os.environ.get("CS_TEST_REDIS_PREFIX", f"cs-test-{os.getpid()}")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
    },
}
