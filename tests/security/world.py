"""The attack surface of the security tests: one record of every kind, owned in a unit the
attackers may not see, every URL pattern of the site, how to fill its parameters, and a
snapshot of the database to prove that a request wrote nothing.

The records live in "West <token>", a child of West owned by a new Sales Representative.
Every name of them holds the token, so "no byte of the record" is "the token is absent".
The attackers are east_rep (a Sales Representative of another unit) and east_manager (the
Manager of a sibling unit), made staff so the admin answers them rather than its login page.
"""
import hashlib
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from approvals import services as approval_services
from contacts.models import ContactCustomerAssignment
from crm.models import Job, Role, SavedView
from customers.models import CustomerGroup
from tests.approvals.factories import ApprovalFactory, PurchaseRequestFactory, b2b_customer, member
from tests.contacts.factories import ContactGroupFactory
from tests.customers.factories import (ActivityFactory, CustomerEmailFactory, CustomerPhoneFactory,
                                       LocationFactory)
from tests.factories import AccountFactory, BusinessUnitFactory, ChannelFactory, UserFactory
from tests.toolkit import token

# -- the records --------------------------------------------------------------------------------


def build_world(org):
    t = token()
    unit = BusinessUnitFactory(name=f"West {t}", parent=org.unit("West"))
    owner = UserFactory(username=f"w{t}", last_name=f"{t}Owner", role="Sales Representative", units=[unit])
    w = SimpleNamespace(token=t, unit=unit, owner=owner, group=unit.group)
    w.channel = ChannelFactory(name="Security Channel")  # organization-wide: everyone may view it
    w.account = AccountFactory(name=f"{t} Account", owner=owner, business_unit=unit, description=f"{t} notes")
    w.customer = b2b_customer(owner=owner, unit=unit, name=f"{t} Customer", channel=w.channel, account=w.account,
                              legal_name=f"{t} Legal")
    w.child = b2b_customer(owner=owner, unit=unit, name=f"{t} Child", channel=w.channel, account=w.account,
                           parent=w.customer)
    w.phone = CustomerPhoneFactory(customer=w.customer, phone="+1 555 7700")
    w.email = CustomerEmailFactory(customer=w.customer, email=f"{t}@cust.example")
    w.location = LocationFactory(customer=w.customer, name=f"{t} Depot")
    w.contact = member(w.customer, "requester", email=f"{t}@contact.example", first_name="Secret",
                       last_name=f"{t}Person")
    w.contact.accounts.add(w.account)
    w.contact_group = ContactGroupFactory(name="Security Group")  # organization-wide
    w.contact.groups.add(w.contact_group)
    w.assignment = ContactCustomerAssignment.objects.filter(contact=w.contact, customer=w.customer).first()
    w.customer_group = CustomerGroup.objects.filter(customer=w.customer).first()
    w.activity = ActivityFactory(target=w.customer, subject=f"{t} Note", created_by=owner)
    w.purchase_request = PurchaseRequestFactory(customer=w.customer, requester=w.contact, title=f"{t} Request",
                                                approved=True)
    w.approval = ApprovalFactory(purchase_request=PurchaseRequestFactory(
        customer=w.customer, requester=w.contact, title=f"{t} Pending", approved=False), reason=f"{t} reason")
    w.approval_token = approval_services.make_link(w.approval, w.contact)
    w.saved_view = SavedView.objects.create(owner=owner, grid="accounts", name=f"{t} View", query=f"q={t}")
    w.job = Job.objects.create(user=owner, kind=Job.Kind.IMPORT, entity="accounts", state=Job.State.READY,
                               filename=f"{t}.csv", mode=Job.Mode.CREATE_UPDATE)
    w.role = Role.objects.create(name=f"{t} Role")
    from django_tasks_db.models import DBTaskResult

    w.task = DBTaskResult.objects.create(args_kwargs={"args": [t], "kwargs": {}}, task_path=f"crm.{t}",
                                         backend_name="default", run_after=timezone.now(),
                                         exception_class_path="", traceback="")
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    seen = {"username": f"{t}login", "ip_address": "10.0.0.1", "user_agent": "test", "path_info": "/login/",
            "http_accept": "*/*"}
    w.access_attempt = AccessAttempt.objects.create(get_data="", post_data="", failures_since_start=1, **seen)
    w.access_log = AccessLog.objects.create(**seen)
    w.access_failure = AccessFailureLog.objects.create(locked_out=False, **seen)
    w.account.description = f"{t} notes, edited"  # a second history row: the history pages list a change
    w.account.save()
    return w


def attackers(org):
    """(east_rep, east_manager), staff, so the admin answers with its rules, not with its login."""
    users = [org.user("east_rep"), org.user("east_manager")]
    for user in users:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return users


# -- the URL configuration ----------------------------------------------------------------------


@dataclass
class Route:
    name: str          # "namespace:name"; an unnamed pattern is named by its route
    route: str         # the whole route, e.g. "accounts/<int:pk>/edit/"
    params: list = field(default_factory=list)


def routes():
    """Every pattern of the site, walking includes (the admin's too)."""
    found = []

    def walk(resolver, prefix, namespace):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(filter(None, [namespace, p.namespace]))
                walk(p, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name or route
                named = re.findall(r"\(\?P<(\w+)>", route)
                params = named + [n for n in re.findall(r"<(?:\w+:)?(\w+)>", route) if n not in named]
                params += [f"_{i}" for i in range(len(re.findall(r"\((?!\?)", route)))]  # positional groups
                found.append(Route(name, route, params))

    walk(get_resolver(), "", None)
    return found


def build_path(route, values):
    """The path of `route` with its parameters filled from `values` (name -> value; regex
    groups, named or positional, in order)."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route.route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    positional = iter(values.get(f"_{i}") for i in range(10))
    path = re.sub(r"\((?!\?)[^)]*\)", lambda m: str(next(positional)), path)
    return "/" + path.replace("^", "").replace("$", "")


# How to fill each pattern's parameters with the world's records: a function of the world
# giving one dict of values, or a list of them (several targets behind one pattern). A pattern
# with parameters missing here fails the tests that walk the URLs, naming it.
ENTITY_RECORDS = {
    "accounts": "account", "customers": "customer", "locations": "location", "contacts": "contact",
    "contact_groups": "contact_group", "channels": "channel", "purchase_requests": "purchase_request",
    "approvals": "approval", "roles": "role", "users": "owner",
}
RECORD_PAGES = ("detail", "update", "delete", "share", "comment", "withdraw")

ARGS = {
    "saved_views:apply": lambda w: {"pk": w.saved_view.pk},
    "saved_views:edit": lambda w: {"pk": w.saved_view.pk},
    "saved_views:default": lambda w: {"pk": w.saved_view.pk},
    "saved_views:delete": lambda w: {"pk": w.saved_view.pk},
    "saved_views:owners": lambda w: [{"grid": g} for g in ("accounts", "customers", "contacts")],
    "jobs:detail": lambda w: {"pk": w.job.pk},
    "jobs:file": lambda w: {"pk": w.job.pk},
    "jobs:action": lambda w: [{"pk": w.job.pk, "action": a} for a in ("confirm", "undo", "remap")],
    "activities:create": lambda w: [
        {"target": "customers.businesscustomer", "pk": w.customer.pk, "kind": "note"},
        {"target": "accounts.account", "pk": w.account.pk, "kind": "call"},
        {"target": "contacts.contact", "pk": w.contact.pk, "kind": "task"},
    ],
    "activities:detail": lambda w: {"pk": w.activity.pk},
    "activities:done": lambda w: {"pk": w.activity.pk},
    "contacts:assign_customer": lambda w: {"pk": w.contact.pk},
    "contacts:unassign_customer": lambda w: {"pk": w.contact.pk, "assignment_pk": w.assignment.pk},
    "contacts:customer_assign": lambda w: {"customer_pk": w.customer.pk},
    "contacts:assignable": lambda w: {"customer_pk": w.customer.pk},
    "contacts:customer_approvers": lambda w: {"customer_pk": w.customer.pk},
    "contacts:customer_unassign": lambda w: {"customer_pk": w.customer.pk, "contact_pk": w.contact.pk},
    "contacts:customer_group": lambda w: {"customer_pk": w.customer.pk, "contact_pk": w.contact.pk},
    # Not a record id: the approver's signed link. An attacker has none, so he forges one.
    "approvals:respond": lambda w: {"token": signing.dumps({"a": w.approval.pk, "c": w.contact.pk, "n": "x"},
                                                           salt="forged")},
    # Not records: Django's pages of an app and its catch-all; walked for leaks all the same.
    "admin:app_list": lambda w: [{"app_label": a} for a in ("accounts", "customers", "contacts", "crm")],
    "admin:view_on_site": lambda w: {"content_type_id": ContentType.objects.get_for_model(w.account).pk,
                                     "object_id": w.account.pk},
    "admin:auth_user_password_change": lambda w: {"id": w.owner.pk},
}
for _ns, _attr in ENTITY_RECORDS.items():
    for _page in RECORD_PAGES:
        ARGS[f"{_ns}:{_page}"] = (lambda attr: lambda w: {"pk": getattr(w, attr).pk})(_attr)

# The admin's pages per model ("admin/<app>/<model>/..."): the record they are built with.
ADMIN_RECORDS = {
    "accounts/account": "account", "customers/businesscustomer": "customer", "customers/location": "location",
    "customers/customergroup": "customer_group", "contacts/contact": "contact",
    "contacts/contactgroup": "contact_group", "contacts/contactcustomerassignment": "assignment",
    "activities/activity": "activity", "approvals/purchaserequest": "purchase_request",
    "approvals/approvalrequest": "approval", "channels/channel": "channel", "crm/businessunit": "unit",
    "crm/role": "role", "crm/user": "owner", "crm/job": "job", "crm/savedview": "saved_view",
    "auth/group": "group", "django_tasks_database/dbtaskresult": "task", "axes/accessattempt": "access_attempt",
    "axes/accesslog": "access_log", "axes/accessfailurelog": "access_failure",
}


def admin_values(route, w):
    m = re.match(r"admin/(\w+)/(\w+)/", route.route)
    if not m or f"{m.group(1)}/{m.group(2)}" not in ADMIN_RECORDS:
        return None
    obj = getattr(w, ADMIN_RECORDS[f"{m.group(1)}/{m.group(2)}"])
    values = {"object_id": obj.pk, "object_pk": obj.pk, "user_id": w.owner.pk, "group_id": w.group.pk}
    if "_1" in route.params:  # simple_history's "<object>/history/<version>/"
        history = getattr(obj, "history", None)
        values.update(_0=obj.pk, _1=history.order_by("history_id").first().history_id if history else 1)
    return values if set(route.params) <= set(values) else None


CATCH_ALL = {"admin/(?P<url>.*)$": lambda w: [{"url": f"accounts/account/{w.account.pk}/"},
                                               {"url": "no/such/page/"}]}


def targets(route, w):
    """[path] for a pattern with parameters, from the tables above; None when they do not say."""
    builder = ARGS.get(route.name) or CATCH_ALL.get(route.route)
    if builder is not None:
        values = builder(w)
        return [build_path(route, v) for v in (values if isinstance(values, list) else [values])]
    if route.route.startswith("admin/"):
        values = admin_values(route, w)
        return None if values is None else [build_path(route, values)]
    return None


def all_paths(w):
    """[(route, path)] for every pattern of the site; patterns the tables cannot fill are
    returned as (route, None)."""
    out = []
    for route in routes():
        if not route.params:
            out.append((route, build_path(route, {})))
            continue
        paths = targets(route, w)
        out.extend((route, p) for p in paths) if paths else out.append((route, None))
    return out


def unmapped(w):
    return sorted({f"{r.name} ({r.route})" for r, p in all_paths(w) if p is None})


# -- the database, before and after --------------------------------------------------------------

# Written by requests by design, and no part of the data: sessions (login), login throttling,
# the admin's log of its own actions.
SKIP_TABLES = re.compile(r"^(django_session|axes_.*|django_admin_log)$")


def snapshot():
    """{table: (row count, checksum of every row)} of every table of the database."""
    out = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            if SKIP_TABLES.match(table) or table.startswith("sqlite_"):
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(row) for row in cursor.fetchall())
            out[table] = (len(rows), hashlib.sha1("\n".join(rows).encode()).hexdigest())
    return out


def changed_tables(before, after):
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


def body(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content
