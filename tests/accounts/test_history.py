"""Every change of an account is kept and shown on its record page's History tab."""
import re

from accounts.models import Account


def history_pane(html):
    start = html.index('id="tab-history"')
    return html[start:]


def test_editing_shows_field_old_new_and_user_in_history(client_for, east_rep):
    client = client_for(east_rep)
    response = client.post("/accounts/new/", {"name": "Initech", "owner": east_rep.pk,
                                              "business_unit": east_rep.primary_unit_id, "description": "Printers"})
    account = Account.objects.get(name="Initech")
    response = client.post(f"/accounts/{account.pk}/edit/", {"name": "Initech Inc.", "description": "Staplers"})
    assert response.status_code == 302

    html = client.get(f"/accounts/{account.pk}/").content.decode()
    assert re.search(r'History <span class="badge[^"]*">2</span>', html)
    pane = history_pane(html)
    changed = pane.index("Changed")
    assert changed < pane.index("Created"), "newest first"
    entry = pane[changed: pane.index("Created")]
    assert str(east_rep) in entry
    assert "Name:</span> <del>Initech</del> → Initech Inc." in entry
    assert "Description:</span> <del>Printers</del> → Staplers" in entry
    assert "Owner" not in entry, "only changed fields are listed"

    record = account.history.order_by("-history_id").first()
    assert (record.history_type, record.history_user, record.name) == ("~", east_rep, "Initech Inc.")


def test_history_shows_assignment_with_its_reason(client_for, east_manager, east_rep, east_rep2):
    client = client_for(east_rep)
    client.post("/accounts/new/", {"name": "Hooli", "owner": east_rep.pk, "business_unit": east_rep.primary_unit_id})
    account = Account.objects.get(name="Hooli")
    client_for(east_manager).post("/accounts/assign/", {"pk": account.pk, "owner": east_rep2.pk})
    pane = history_pane(client_for(east_manager).get(f"/accounts/{account.pk}/").content.decode())
    assert "Assigned to east_rep2 (East)" in pane
    assert str(east_manager) in pane
    assert f"Owner:</span> <del>{east_rep}</del> → {east_rep2}" in pane, "related records by name, not id"


def test_history_does_not_name_related_records_the_viewer_may_not_see(org, east_rep, west_rep):
    from crm.views import history_of
    from tests.factories import AccountFactory

    hidden = AccountFactory(name="West Secret", owner=west_rep)
    visible = AccountFactory(name="East Known", owner=east_rep)
    account = AccountFactory(name="Referred", owner=east_rep, referred_by=hidden)
    account.referred_by = visible
    account.save()
    (change,) = [c for entry in history_of(account, user=east_rep) for c in entry["changes"]]
    assert change[1:] == [f"#{hidden.pk}", "East Known"]
    (change,) = [c for entry in history_of(account, user=west_rep) for c in entry["changes"]]
    assert change[1] == "West Secret"
