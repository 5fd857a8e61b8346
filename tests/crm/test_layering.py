"""The apps are layers: an app imports only the apps below it, so there is no import cycle.

    crm  <-  activities  <-  channels  <-  accounts  <-  customers  <-  contacts  <-  approvals

crm is the shared core; activities attach to any record without importing its app. An app
that needs a higher app's records reads them through the relation the higher app owns
(e.g. `account.customers`, a form field's own queryset) or gets them from the higher app
through a hook it registers (e.g. accounts.services.account_section). Every import counts:
inside functions too, relative ones, and apps.get_model() / import_module() with a constant
name. Migrations are history and are not checked. The project's composition modules
(management commands, the benchmark and demo data) assemble every app and sit on top.
"""
import ast
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]

LAYERS = ["crm", "activities", "channels", "accounts", "customers", "contacts", "approvals"]

# Modules of crm that assemble the whole project rather than serve the apps: they may import any app.
COMPOSITION = ("crm.bench", "crm.demo", "crm.management")

# Imports that break the layering in files another change owns; each entry says its fix.
# Remove an entry once that file is fixed (an entry whose import is gone fails the last test).
PENDING = {
    ("activities.resources", "channels"): "ChoiceWidget moves to crm.resources; activities imports it from there",
}


def project_apps():
    """Labels of the project's own apps (those whose code lives in this repository)."""
    return [config.label for config in apps.get_app_configs() if Path(config.path).resolve().parent == ROOT]


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path):
    """Every module `path` imports, absolute: (line, module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if called in ("get_model", "import_module", "import_string") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def app_files(app):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.relative_to(ROOT).parts:
            yield path


def imports_between_apps():
    """[(importing module, its app, imported app, 'file:line')] for imports from one project app into another."""
    labels = project_apps()
    edges = {}
    for app in labels:
        for path in app_files(app):
            module = module_name(path)
            for line, target in imported_modules(path):
                other = target.split(".")[0]
                if other in labels and other != app:
                    edges.setdefault((module, app, other, f"{path.relative_to(ROOT)}:{line}"), None)
    return list(edges)


def is_composition(module):
    return any(module == m or module.startswith(m + ".") for m in COMPOSITION)


def test_every_app_has_a_layer():
    missing = [label for label in project_apps() if label not in LAYERS]
    assert not missing, f"Place the new app(s) {missing} in LAYERS (which apps may they import, which them?)"


def test_no_app_imports_a_higher_app():
    rank = {label: i for i, label in enumerate(LAYERS)}
    upward = [f"{where}: {module} imports {other}" for module, app, other, where in imports_between_apps()
              if rank.get(other, -1) > rank.get(app, -1) and not is_composition(module)
              and (module, other) not in PENDING]
    assert not upward, "Imports of higher apps:\n" + "\n".join(upward)


def test_no_import_cycle_between_apps():
    graph = {}
    for module, app, other, _ in imports_between_apps():
        if not is_composition(module) and (module, other) not in PENDING:
            graph.setdefault(app, set()).add(other)

    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return path + [start]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [" -> ".join(c) for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, "Import cycles between apps: " + "; ".join(cycles)


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path, monkeypatch):
    source = tmp_path / "customers" / "models.py"
    source.parent.mkdir()
    source.write_text("from .forms import X\n\ndef f():\n    from contacts.models import Contact\n"
                      "    apps.get_model('accounts', 'Account')\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = {module for _, module in imported_modules(source)}
    assert {"customers.forms", "contacts.models", "accounts"} <= found


@pytest.mark.parametrize("edge", sorted(PENDING))
def test_pending_exceptions_are_still_needed(edge):
    module, other = edge
    still = any(m == module and o == other for m, _, o, _ in imports_between_apps())
    assert still, f"{module} no longer imports {other}: remove it from PENDING"
