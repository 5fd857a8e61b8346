"""Fixtures: the test organization (see tests.factories.build_org), its users by name and
logged-in clients."""
import pytest
from django.test import Client

from .factories import build_org


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    # Hashing with PBKDF2 would dominate the suite's run time; uploads go to a throwaway folder.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def org(db):
    return build_org()


@pytest.fixture
def admin(org):
    return org.user("admin")


@pytest.fixture
def east_manager(org):
    return org.user("east_manager")


@pytest.fixture
def east_rep(org):
    return org.user("east_rep")


@pytest.fixture
def east_rep2(org):
    return org.user("east_rep2")


@pytest.fixture
def north_rep(org):
    return org.user("north_rep")


@pytest.fixture
def west_rep(org):
    return org.user("west_rep")


@pytest.fixture
def client_for():
    """client_for(user) -> a test Client logged in as that user (one per user and test)."""
    clients = {}

    def make(user):
        if user.pk not in clients:
            client = Client()
            client.force_login(user)
            clients[user.pk] = client
        return clients[user.pk]

    return make
