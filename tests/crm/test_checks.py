"""Every entity is complete (the startup check) and covered by an access suite (this test),
so a new entity cannot forget a piece or its access tests."""
import importlib
import pkgutil

import pytest
from django.core import checks

import tests
from crm.views import ENTITIES, Entity
from tests.crm.test_administration import NAMESPACES as ADMINISTRATION_TESTED
from tests.toolkit import AccessSuite


def access_suites():
    """Namespaces of every AccessSuite declared in the test packages."""
    found = set()
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        if info.name.rsplit(".", 1)[-1].startswith("test_") and ".browser." not in info.name:
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, AccessSuite) and value.namespace:
                    found.add(value.namespace)
    return found


def test_every_entity_has_an_access_suite():
    suites = access_suites()
    missing = [e.namespace for e in ENTITIES
               if e.namespace not in suites and not (e.administration and e.namespace in ADMINISTRATION_TESTED)]
    assert not missing, f"entities without an access suite in tests/: {missing}"


def test_the_entity_check_passes_for_the_declared_entities():
    assert [e for e in checks.run_checks() if e.id.startswith("crm.")] == []


@pytest.fixture
def incomplete_entity():
    from accounts.models import Account

    class Broken(Entity):
        model = Account
        namespace = "accounts"   # taken
        form_class = None

    yield Broken
    ENTITIES.remove(Broken)


def test_the_entity_check_names_a_missing_piece(incomplete_entity):
    ids = {e.id for e in checks.run_checks() if e.obj is incomplete_entity}
    assert {"crm.E001", "crm.E004"} <= ids
