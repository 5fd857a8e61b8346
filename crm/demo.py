"""Sample records for seed_demo. Each app adds its own in seed_records, looked up by name
so the command stays idempotent."""
from django.apps import apps


def seed_records(users, units, out):
    Channel = apps.get_model("channels", "Channel")
    Account = apps.get_model("accounts", "Account")
    channels = {}
    for name, type_, status in [("Direct Sales", "sales", "active"), ("Web Store", "commerce", "active"),
                                ("Trade Fairs", "sales", "inactive")]:
        channels[name], created = Channel.objects.get_or_create(name=name, defaults={"type": type_, "status": status})
        if created:
            out.write(f"  created channel {name}")
    accounts = {}
    for name, owner in [("Globex Corporation", "east_manager"), ("Initech", "east_rep"), ("Umbrella Industries", "east_rep"),
                        ("Soylent Foods", "west_rep"), ("Stark Logistics", "west_rep"), ("Wayne Holdings", "admin")]:
        user = users[owner]
        accounts[name], created = Account.objects.get_or_create(
            name=name, defaults={"owner": user, "business_unit": user.primary_unit,
                                 "description": f"Demo account owned by {owner}."})
        if created:
            out.write(f"  created account {name}")
    contacts = seed_contacts(users, accounts, out)
    return {"channels": channels, "accounts": accounts, "contacts": contacts}


DEMO_CONTACTS = [
    # account, owner, prefix, first, last, job title, emails, phones, city, country, groups, reports to (email)
    ("Globex Corporation", "east_manager", "Mr.", "Hank", "Scorpio", "Chief Executive Officer",
     ["hank.scorpio@globex.example"], ["+1 555 0101"], "Cypress Creek", "US", ["VIP", "Decision makers"], None),
    ("Globex Corporation", "east_manager", "Ms.", "Lisa", "Harmon", "Head of Purchasing",
     ["lisa.harmon@globex.example", "lisa@harmon.example"], ["+1 555 0102", "+1 555 0199"], "Cypress Creek", "US",
     ["Decision makers", "Newsletter"], "hank.scorpio@globex.example"),
    ("Initech", "east_rep", "", "Bill", "Lumbergh", "Vice President",
     ["bill.lumbergh@initech.example"], ["+1 555 0110"], "Austin", "US", ["Decision makers"], None),
    ("Initech", "east_rep", "", "Peter", "Gibbons", "Software Engineer",
     ["peter.gibbons@initech.example"], ["+1 555 0111"], "Austin", "US", ["Newsletter"], "bill.lumbergh@initech.example"),
    ("Umbrella Industries", "east_rep", "Dr.", "Alexia", "Ashford", "Research Director",
     ["a.ashford@umbrella.example"], ["+44 20 7946 0018"], "London", "GB", ["VIP"], None),
    ("Soylent Foods", "west_rep", "", "Robert", "Thorn", "Procurement Manager",
     ["r.thorn@soylent.example"], ["+1 555 0140"], "Seattle", "US", ["Newsletter"], None),
    ("Soylent Foods", "west_rep", "Ms.", "Shirl", "Novak", "Accounts Payable",
     ["shirl.novak@soylent.example"], ["+1 555 0141"], "Seattle", "US", [], "r.thorn@soylent.example"),
    ("Stark Logistics", "west_rep", "", "Virginia", "Potts", "Chief Operating Officer",
     ["v.potts@stark.example", "pepper@stark.example"], ["+1 555 0150"], "Malibu", "US", ["VIP", "Decision makers"], None),
]


def seed_contacts(users, accounts, out):
    """Contacts of the demo accounts in East and West, with their emails, phones, address,
    groups and reporting lines; looked up by primary email."""
    Contact = apps.get_model("contacts", "Contact")
    ContactEmail = apps.get_model("contacts", "ContactEmail")
    ContactPhone = apps.get_model("contacts", "ContactPhone")
    ContactAddress = apps.get_model("contacts", "ContactAddress")
    ContactGroup = apps.get_model("contacts", "ContactGroup")
    groups = {}
    for name, description in [("Newsletter", "Receives the monthly product newsletter."),
                              ("VIP", "Key people: invite to events, call before price changes."),
                              ("Decision makers", "Sign off purchases.")]:
        groups[name], created = ContactGroup.objects.get_or_create(name=name, defaults={"description": description})
        if created:
            out.write(f"  created contact group {name}")
    contacts = {}
    for number, (account, owner, prefix, first, last, title, emails, phones, city, country, group_names,
                 boss) in enumerate(DEMO_CONTACTS, start=1):
        contact = Contact.objects.filter(email=emails[0]).first()
        if contact is None:
            user = users[owner]
            contact = Contact.objects.create(
                name_prefix=prefix, first_name=first, last_name=last, job_title=title, email=emails[0],
                phone=phones[0], source="referral", owner=user, business_unit=user.primary_unit,
                assigned_to=user, reports_to=contacts.get(boss))
            ContactEmail.objects.bulk_create(
                [ContactEmail(contact=contact, email=e, is_primary=i == 0) for i, e in enumerate(emails)])
            ContactPhone.objects.bulk_create(
                [ContactPhone(contact=contact, phone=p, is_primary=i == 0) for i, p in enumerate(phones)])
            ContactAddress.objects.create(contact=contact, type="billing", is_primary=True,
                                          street=f"{number * 12} Commerce Street", city=city, country=country)
            contact.accounts.add(accounts[account])
            contact.groups.add(*[groups[g] for g in group_names])
            out.write(f"  created contact {first} {last}")
        contacts[emails[0]] = contact
    # The first contact of each account is the primary contact of that account's customers.
    Assignment = apps.get_model("contacts", "ContactCustomerAssignment")
    Customer = apps.get_model("customers", "BusinessCustomer")
    firsts = {}
    for account, *_, emails, _phones, _city, _country, _groups, _boss in DEMO_CONTACTS:
        firsts.setdefault(account, contacts[emails[0]])
    for customer in Customer.objects.filter(account__in=[accounts[a] for a in firsts]).select_related("account"):
        Assignment.objects.get_or_create(contact=firsts[customer.account.name], customer=customer, type="primary")
    return contacts
