"""Autocomplete selects: the form renders only the chosen record, the search offers only
records the user may see."""
from tests.contacts.factories import ContactFactory
from tests.factories import AccountFactory


def test_autocomplete_offers_only_visible_matches(client_for, east_rep, west_rep):
    east = AccountFactory(name="Orion East", owner=east_rep)
    west = AccountFactory(name="Orion West", owner=west_rep)
    html = client_for(west_rep).get("/accounts/autocomplete/", {"q": "orion", "field": "account"}).content.decode()
    assert f'value="{west.pk}"' in html and "Orion West" in html
    assert f'value="{east.pk}"' not in html and "Orion East" not in html


def test_autocomplete_keeps_chosen_but_never_reveals_hidden_ids(client_for, east_rep, west_rep):
    east = AccountFactory(name="Orion East", owner=east_rep)
    west = AccountFactory(name="Orion West", owner=west_rep)
    params = {"q": "zzz", "field": "accounts", "accounts": [str(west.pk), str(east.pk)], "multiple": "1"}
    html = client_for(west_rep).get("/accounts/autocomplete/", params).content.decode()
    assert f'<option value="{west.pk}" selected>Orion West</option>' in html
    assert "Orion East" not in html and "No match" in html


def test_contact_form_renders_only_chosen_accounts(client_for, east_rep):
    chosen = AccountFactory(name="Chosen Account", owner=east_rep)
    others = [AccountFactory(name=f"Other Account {i}", owner=east_rep) for i in range(30)]
    contact = ContactFactory(first_name="Ann", owner=east_rep, accounts=[chosen])
    html = client_for(east_rep).get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert "Chosen Account" in html
    assert not any(a.name in html for a in others)
    assert 'hx-get="/accounts/autocomplete/"' in html


def test_unknown_entity_autocomplete_needs_login(client):
    assert client.get("/accounts/autocomplete/", {"q": "a"}).status_code == 302
