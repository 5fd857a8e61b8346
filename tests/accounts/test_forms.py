"""The account form: its choices are narrowed by what they mean here (the default contact is
one of the account's contacts, an account is not its own referrer) and by what the user may
view (generically, crm.forms.restrict_form_fields), and links to records he may not view
survive his edit."""
from html.parser import HTMLParser

from accounts.models import Account
from crm.forms import HIDDEN_LABEL
from crm.services import share_record
from tests.contacts.factories import ContactFactory
from tests.factories import AccountFactory


class BrowserForm(HTMLParser):
    """The fields a browser submits, unchanged, for the largest <form method="post"> of a
    page (the record's form, not the top bar's logout)."""

    def __init__(self, html):
        super().__init__()
        self.forms, self.current, self.select, self.textarea = [], None, None, None
        self.feed(html)
        self.data = max(self.forms, key=len) if self.forms else {}

    def add(self, name, value):
        self.current.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self.current = {}
            self.forms.append(self.current)
        if self.current is None:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "search"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.add(name, attrs.get("value", "on" if attrs.get("type") == "checkbox" else ""))
        elif tag == "select":
            self.select = name
        elif tag == "option" and self.select and "selected" in attrs:
            self.add(self.select, attrs.get("value", ""))
        elif tag == "textarea":
            self.textarea = name
            self.add(name, "")

    def handle_data(self, data):
        if self.textarea:
            self.current[self.textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.current = None


def browser_post(client, url, **changes):
    form = BrowserForm(client.get(url).content.decode())
    data = {name: values if len(values) > 1 else values[0] for name, values in form.data.items()}
    data.update(changes)
    return client.post(url, data)


def test_an_editor_who_may_not_view_the_referrer_and_default_contact_keeps_them(org, east_rep, east_rep2, west_rep,
                                                                               client_for):
    referrer = AccountFactory(name="East Referrer", owner=east_rep2)
    account = AccountFactory(name="Shared Account", owner=east_rep2, referred_by=referrer)
    contact = ContactFactory(first_name="Erin", last_name="Eastwood", owner=east_rep2, accounts=[account])
    account.default_contact = contact
    account.save()
    share_record(account, east_rep2, west_rep, "change")
    client = client_for(west_rep)
    url = f"/accounts/{account.pk}/edit/"

    html = client.get(url).content.decode()
    assert "East Referrer" not in html and "Eastwood" not in html
    assert f'<option value="{referrer.pk}" selected>{HIDDEN_LABEL}</option>' in html
    assert f'<option value="{contact.pk}" selected>{HIDDEN_LABEL}</option>' in html

    response = browser_post(client, url, description="Edited by West")
    assert response.status_code == 302, response.context["form"].errors
    account.refresh_from_db()
    assert account.description == "Edited by West"
    assert (account.referred_by, account.default_contact) == (referrer, contact)

    # Hidden records are kept, not offered: another one he may not view cannot be chosen.
    other = AccountFactory(name="Other East", owner=east_rep2)
    response = browser_post(client, url, referred_by=str(other.pk))
    assert response.status_code == 400 and "referred_by" in response.context["form"].errors
    account.refresh_from_db()
    assert account.referred_by == referrer


def test_default_contact_is_one_of_the_accounts_own_visible_contacts(org, east_rep, west_rep, client_for):
    account = AccountFactory(name="Initech", owner=east_rep)
    own = ContactFactory(last_name="Member", owner=east_rep, accounts=[account])
    ContactFactory(last_name="Stranger", owner=east_rep)  # not a contact of the account
    ContactFactory(last_name="Hidden", owner=west_rep, accounts=[account])  # one he may not view
    form = client_for(east_rep).get(f"/accounts/{account.pk}/edit/").context["form"]
    assert list(form.fields["default_contact"].queryset) == [own]
    assert account not in form.fields["referred_by"].queryset  # not its own referrer
    assert not client_for(east_rep).get("/accounts/new/").context["form"].fields["default_contact"].queryset.exists()
    assert Account.objects.count() == 1
