"""Production settings and the container setup, checked the way they are used: settings
in a fresh process from the environment, compose and Dockerfile as files."""
import json
import os
import secrets
import string
import subprocess
import sys

import pytest
import yaml
from django.conf import settings

BASE = settings.BASE_DIR


def run(args, **env):
    """Run a Python command in a fresh process with the production environment plus `env`."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CRM_TESTING",
                          "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"}}
    clean.update(env)
    return subprocess.run([sys.executable, *args], cwd=BASE, env=clean, capture_output=True, text=True, timeout=120)


def secret_key():
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(50))


def test_deploy_check_passes_in_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 DEBUG="0", SECRET_KEY=secret_key(), ALLOWED_HOSTS="crm.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_catches_a_weak_key_and_debug():
    """The check above can fail: the same command refuses a weak key and DEBUG."""
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 DEBUG="1", SECRET_KEY="short", ALLOWED_HOSTS="crm.example.com")
    assert result.returncode != 0
    assert "security.W009" in result.stderr and "security.W018" in result.stderr


def test_settings_refuse_to_load_without_secret_key_when_debug_is_off():
    result = run(["-c", "import django; django.setup()"], DJANGO_SETTINGS_MODULE="crm.settings", DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_production_defaults_are_secure():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
            "s.SECURE_HSTS_SECONDS > 0, s.ALLOWED_HOSTS, s.STORAGES['staticfiles']['BACKEND'])")
    result = run(["-c", code], DJANGO_SETTINGS_MODULE="crm.settings", DEBUG="0", SECRET_KEY=secret_key())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 6) == [
        "False", "True", "True", "True", "True", "[]", "whitenoise.storage.CompressedManifestStaticFilesStorage\n"]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((BASE / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile():
    path = BASE / "Dockerfile"
    assert path.exists()
    return path.read_text()


def command_of(service, dockerfile):
    """A service's command, or the image's CMD when it has none."""
    if "command" in service:
        cmd = service["command"]
        return cmd if isinstance(cmd, list) else cmd.split()
    lines = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert lines, "the Dockerfile has no CMD"
    return json.loads(lines[-1][4:])


def test_compose_has_db_migrate_and_web(compose):
    services = compose["services"]
    assert {"db", "migrate", "web"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    web_deps = services["web"]["depends_on"]
    assert web_deps["migrate"]["condition"] == "service_completed_successfully"
    assert web_deps["db"]["condition"] == "service_healthy"
    for name in ("migrate", "web"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["DEBUG"] == "0"
        assert "SECRET_KEY" in env


def test_web_runs_gunicorn_on_the_wsgi_module(compose, dockerfile):
    command = command_of(compose["services"]["web"], dockerfile)
    assert command[0] == "gunicorn"
    module, _, attribute = command[1].partition(":")
    assert module == "crm.wsgi"
    path = BASE / (module.replace(".", "/") + ".py")
    assert path.exists()
    assert f"{attribute or 'application'} =" in path.read_text()


def test_migrate_runs_manage_py(compose, dockerfile):
    command = command_of(compose["services"]["migrate"], dockerfile)
    assert command[:3] == ["python", "manage.py", "migrate"]
    assert (BASE / "manage.py").exists()


def test_dockerfile_installs_and_collects_static(dockerfile):
    assert "pip install" in dockerfile and "collectstatic" in dockerfile
    assert "USER " in dockerfile, "the container does not run as root"
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "--" not in line]
    for name in copied:
        assert (BASE / name).exists(), f"Dockerfile copies {name}, which does not exist"
