"""The account page as the 360-degree view, and merge moving customers, contacts and activities."""
from activities.models import Activity
from contacts.models import Contact
from customers.models import BusinessCustomer
from tests.accounts.test_merge import merge_post
from tests.contacts.factories import AssignmentFactory, ContactFactory
from tests.customers.factories import ActivityFactory, BusinessCustomerFactory
from tests.factories import AccountFactory, ChannelFactory


def test_account_page_sums_per_channel_and_shows_one_timeline(client_for, east_manager, east_rep, west_rep):
    account = AccountFactory(name="Globex", owner=east_rep)
    web = ChannelFactory(name="Web Store", type="commerce")
    sales = BusinessCustomerFactory(name="Globex Sales", account=account, owner=east_rep, lifetime_value=1000)
    shop = BusinessCustomerFactory(name="Globex Shop", account=account, owner=east_rep, channel=web, lifetime_value=250)
    contact = ContactFactory(first_name="Gina", last_name="Glo", owner=east_rep, accounts=[account],
                             emails=["gina@globex.example"])
    ActivityFactory(target=account, subject="Account kickoff")
    ActivityFactory(target=sales, subject="Call about the renewal")
    ActivityFactory(target=shop, subject="Web order question")
    ActivityFactory(target=contact, subject="Lunch with Gina")
    # A customer of the same account that the rep may not see stays out of totals and timeline.
    hidden = BusinessCustomerFactory(name="Globex West", account=account, owner=west_rep, lifetime_value=99999)
    ActivityFactory(target=hidden, subject="Secret West call")

    page = client_for(east_rep).get(f"/accounts/{account.pk}/").content.decode()
    assert "1,000.00 USD" in page and "250.00 USD" in page and "1,250.00 USD" in page
    assert "99,999" not in page and "Globex West" not in page
    for subject in ("Account kickoff", "Call about the renewal", "Web order question", "Lunch with Gina"):
        assert subject in page
    assert "Secret West call" not in page
    assert page.index("Lunch with Gina") < page.index("Account kickoff")  # newest first


def test_send_email_on_account_offers_only_visible_addresses(client_for, east_rep, west_rep):
    account = AccountFactory(name="Globex", owner=east_rep)
    ContactFactory(owner=east_rep, accounts=[account], emails=["seen@globex.example"])
    ContactFactory(owner=west_rep, accounts=[account], emails=["hidden@globex.example"])
    form = client_for(east_rep).get(f"/activities/accounts.account/{account.pk}/new/email/").content.decode()
    assert "seen@globex.example" in form and "hidden@globex.example" not in form


def test_merge_moves_customers_contacts_and_activities_and_loses_nothing(client_for, east_manager, east_rep):
    accounts = [AccountFactory(name=f"Acme {i}", owner=east_rep) for i in range(3)]
    master, others = accounts[0], accounts[1:]
    shared = ContactFactory(owner=east_rep, accounts=accounts)  # linked to all three: one link remains
    for i, account in enumerate(accounts):
        customer = BusinessCustomerFactory(name=f"Customer {i}", account=account, owner=east_rep)
        AssignmentFactory(contact=shared, customer=customer)
        ContactFactory(owner=east_rep, accounts=[account])
        ActivityFactory(target=account)
        ActivityFactory(target=customer)
    others[0].default_contact = shared
    others[0].save()
    before = {
        "customers": BusinessCustomer.objects.count(),
        "contacts": Contact.objects.count(),
        "activities": Activity.objects.count(),
    }
    response = merge_post(client_for(east_manager), accounts, master=master, default_contact=others[0])
    assert response.status_code == 302
    assert BusinessCustomer.objects.count() == before["customers"] == BusinessCustomer.objects.filter(account=master).count()
    assert Contact.objects.count() == before["contacts"]
    assert Contact.objects.filter(accounts=master).count() == 4
    assert shared.accounts.count() == 1
    assert Activity.objects.count() == before["activities"]
    assert master.activities.count() == 3
    master.refresh_from_db()
    assert master.default_contact == shared
    page = client_for(east_manager).get(f"/accounts/{master.pk}/").content.decode()
    for i in range(3):
        assert f"Customer {i}" in page
