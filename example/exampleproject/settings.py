"""Settings of the example project: SQLite next to this file, DEBUG on, nothing else to set up.

Environment overrides (used by tests/example/test_browser.py):

``EXAMPLE_DB_PATH``   the SQLite file (default: ``example/db.sqlite3``)
``EXAMPLE_DEBUG``     ``0`` turns DEBUG off (default: on; ``runserver`` then serves static files)
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example only: never deploy with this key.
SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "example-only-insecure-key-change-me")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "creative_services.contrib.django",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"

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

WSGI_APPLICATION = "exampleproject.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
LOGIN_URL = "admin:login"

# creative-services (all optional; the defaults are shown):
# CREATIVE_SERVICES_LLM_MODEL = "creative_services.LLMModel"   # or "myapp.Llms"
# CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL = 0.5
# CREATIVE_SERVICES_ENCRYPTION_KEY = None                        # default: SECRET_KEY
