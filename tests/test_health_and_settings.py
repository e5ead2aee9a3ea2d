import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hitl.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def test_health_checks_database_and_broker(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_reports_a_dead_broker(db, client):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["database"] == "ok"


def test_health_answers_quickly_when_the_broker_is_dead(db, client):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    started = time.monotonic()
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    assert time.monotonic() - started < 2


def test_ready_needs_only_the_database(db, client):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok"}


def test_ready_answers_503_without_the_database(transactional_db, client):
    from django.db import connection

    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"].startswith("error")


def _production_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if (not key.startswith("HITL_") or key == "HITL_CHROMIUM")
        and key != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update(
        HITL_SECRET_KEY="k" * 30 + "production-secret-with-enough-entropy-9f8e7d6c5b4a",
        HITL_ALLOWED_HOSTS="hitl.example.com",
        HITL_SITE_URL="https://hitl.example.com",
    )
    return env


def test_deploy_check_is_clean_with_production_variables():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_are_safe():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS > 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**_production_env(), "DJANGO_SETTINGS_MODULE": "hitl.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["False", "True", "True", "True", "True"], result.stderr


@pytest.mark.parametrize("missing", ["HITL_SECRET_KEY", "DATABASE_URL"])
def test_settings_refuse_to_start_without_required_variables(missing):
    env = _production_env()
    env.pop(missing)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert missing in result.stderr


def test_database_sessions_run_without_jit(db):
    """Every connection turns PostgreSQL's JIT off: short queries whose estimated cost
    crossed its threshold spent far longer compiling than running."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"HITL_FILE_STORAGE": "s3", "HITL_S3_BUCKET": " "}, "HITL_S3_BUCKET"),
        ({"HITL_FILE_STORAGE": "ftp"}, "HITL_FILE_STORAGE"),
    ],
)
def test_settings_refuse_a_file_storage_they_cannot_use(variables, named):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**_production_env(), **variables, "DJANGO_SETTINGS_MODULE": "hitl.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr
