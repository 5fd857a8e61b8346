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
    customers = seed_customers(users, channels, accounts, out)
    contacts = seed_contacts(users, accounts, out)
    seed_b2b(users, channels, accounts, customers, contacts, out)
    return {"channels": channels, "accounts": accounts, "customers": customers, "contacts": contacts}


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
    ("Globex Corporation", "east_manager", "Mr.", "Homer", "Simpson", "Safety Inspector",
     ["homer.simpson@globex.example"], ["+1 555 0103"], "Cypress Creek", "US", [], "lisa.harmon@globex.example"),
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


DEMO_CUSTOMERS = [
    # name, channel, account, owner, legal name, tax number, industry, employees, website, email, phone,
    # street, city, postal code, region, country, lifetime value, currency
    ("Globex Corporation", "Direct Sales", "Globex Corporation", "east_manager", "Globex Corporation Inc.",
     "US-94-1234567", "Manufacturing", 1200, "https://globex.example", "orders@globex.example", "+1 555 0100",
     "1 Globex Way", "Cypress Creek", "97001", "OR", "US", "1250000.00", "USD"),
    ("Globex Online", "Web Store", "Globex Corporation", "east_manager", "Globex Corporation Inc.",
     "US-94-1234567", "Manufacturing", 1200, "https://shop.globex.example", "webshop@globex.example", "+1 555 0120",
     "1 Globex Way", "Cypress Creek", "97001", "OR", "US", "86500.00", "USD"),
    ("Initech", "Direct Sales", "Initech", "east_rep", "Initech LLC", "US-74-7654321", "Software", 350,
     "https://initech.example", "purchasing@initech.example", "+1 555 0112",
     "4120 Freidrich Lane", "Austin", "78744", "TX", "US", "312000.00", "USD"),
    ("Umbrella Industries", "Direct Sales", "Umbrella Industries", "east_rep", "Umbrella Industries plc",
     "GB123456789", "Pharmaceuticals", 5400, "https://umbrella.example", "procurement@umbrella.example",
     "+44 20 7946 0000", "545 Raccoon Street", "London", "EC1A 1BB", "Greater London", "GB", "2040000.00", "GBP"),
    ("Umbrella Web Shop", "Web Store", "Umbrella Industries", "east_rep", "Umbrella Industries plc",
     "GB123456789", "Pharmaceuticals", 5400, "https://store.umbrella.example", "webstore@umbrella.example",
     "+44 20 7946 0001", "545 Raccoon Street", "London", "EC1A 1BB", "Greater London", "GB", "40250.00", "GBP"),
    ("Soylent Foods", "Direct Sales", "Soylent Foods", "west_rep", "Soylent Foods Corp.", "US-91-5550140",
     "Food & Beverage", 800, "https://soylent.example", "buyers@soylent.example", "+1 555 0142",
     "2022 Green Avenue", "Seattle", "98101", "WA", "US", "640000.00", "USD"),
    ("Soylent Web", "Web Store", "Soylent Foods", "west_rep", "Soylent Foods Corp.", "US-91-5550140",
     "Food & Beverage", 800, "https://shop.soylent.example", "shop@soylent.example", "+1 555 0143",
     "2022 Green Avenue", "Seattle", "98101", "WA", "US", "23900.00", "USD"),
    ("Stark Logistics", "Direct Sales", "Stark Logistics", "west_rep", "Stark Logistics GmbH", "DE811234567",
     "Logistics", 2100, "https://stark.example", "dispatch@stark.example", "+49 40 123456",
     "Am Sandtorkai 1", "Hamburg", "20457", "Hamburg", "DE", "980000.00", "EUR"),
    ("Wayne Enterprises", "Direct Sales", "Wayne Holdings", "admin", "Wayne Enterprises Inc.", "US-13-0000001",
     "Conglomerate", 25000, "https://wayne.example", "office@wayne.example", "+1 555 0199",
     "1007 Mountain Drive", "Gotham", "10001", "NY", "US", "5400000.00", "USD"),
]
DEMO_ACTIVITIES = [
    # customer, kind, by, subject, body, extra fields
    ("Globex Corporation", "call", "east_manager", "Quarterly review with Hank",
     "Happy with delivery times; wants a volume discount from Q3.", {"direction": "out", "duration": 25}),
    ("Globex Corporation", "task", "east_manager", "Send volume discount proposal",
     "Two tiers: 5% over 10k units, 8% over 25k.", {"due_offset": 7}),
    ("Initech", "note", "east_rep", "", "Purchasing moves to the new ERP in May: send invoices as PDF.", {}),
    ("Soylent Foods", "call", "west_rep", "Inbound: delivery question",
     "Asked about cold-chain options for the Seattle warehouse.", {"direction": "in", "duration": 10}),
]


def seed_customers(users, channels, accounts, out):
    """Business customers of the demo accounts in the active channels, with their primary
    email and phone, a billing address and lifetime value, and a few activities; looked up
    by name within their channel."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    Customer = apps.get_model("customers", "BusinessCustomer")
    CustomerEmail = apps.get_model("customers", "CustomerEmail")
    CustomerPhone = apps.get_model("customers", "CustomerPhone")
    Activity = apps.get_model("activities", "Activity")
    ContentType = apps.get_model("contenttypes", "ContentType")
    customers = {}
    for (name, channel, account, owner, legal, tax, industry, employees, website, email, phone, street, city,
         postal, region, country, value, currency) in DEMO_CUSTOMERS:
        customer = Customer.objects.filter(name=name, channel=channels[channel]).first()
        if customer is None:
            user = users[owner]
            customer = Customer.objects.create(
                name=name, channel=channels[channel], account=accounts[account], owner=user,
                business_unit=user.primary_unit, legal_name=legal, tax_number=tax, industry=industry,
                employees=employees, website=website, primary_email=email, primary_phone=phone,
                billing_street=street, billing_city=city, billing_postal_code=postal, billing_region=region,
                billing_country=country, shipping_street=street, shipping_city=city, shipping_postal_code=postal,
                shipping_region=region, shipping_country=country, lifetime_value=Decimal(value), currency=currency)
            CustomerEmail.objects.create(customer=customer, email=email, kind="work", is_primary=True)
            CustomerEmail.objects.create(customer=customer, email=f"accounts@{email.split('@')[1]}", kind="billing")
            CustomerPhone.objects.create(customer=customer, phone=phone, kind="work", is_primary=True)
            out.write(f"  created business customer {name} ({channel})")
        customers[name] = customer
    customer_type = ContentType.objects.get_for_model(Customer)
    now = timezone.now()
    for number, (name, kind, by, subject, body, extra) in enumerate(DEMO_ACTIVITIES):
        customer = customers[name]
        fields = dict(extra)
        due = fields.pop("due_offset", None)
        if due is not None:
            fields["due_date"] = (now + timedelta(days=due)).date()
        Activity.objects.get_or_create(
            content_type=customer_type, object_id=customer.pk, kind=kind, subject=subject, body=body,
            defaults={"created_by": users[by], "occurred_at": now - timedelta(days=len(DEMO_ACTIVITIES) - number),
                      **fields})
    return customers


def seed_b2b(users, channels, accounts, customers, contacts, out):
    """The B2B company of the demo: Globex Online (Web Store) with a subsidiary, two
    locations, contacts in its Admin, Buyer and Requester groups, a purchase limit and a
    monthly budget, one Pending approval (its approvers mailed once, when it is created)
    and one Expired. Through the services, so groups, history and mails are as in use."""
    from datetime import timedelta
    from decimal import Decimal

    from django.test.utils import override_settings
    from django.utils import timezone

    from approvals.models import ApprovalRequest, PurchaseRequest
    from approvals.services import create_purchase_request, expire_approvals
    from contacts.models import ContactCustomerAssignment
    from contacts.services import assign_roles, move_to_group
    from customers.models import BusinessCustomer, Location, LocationTag

    admin, manager = users["admin"], users["east_manager"]
    company = customers["Globex Online"]
    if company.purchase_limit is None:
        company.purchase_limit, company.monthly_budget, company.approval_expiry_days = (
            Decimal("10000.00"), Decimal("50000.00"), 7)
        company.assignment_propagation = "down"
        company._history_user = admin
        company.save()
        out.write("  set the purchase limit and monthly budget of Globex Online")
    subsidiary = BusinessCustomer.objects.filter(name="Globex Online Europe", channel=company.channel).first()
    if subsidiary is None:
        subsidiary = BusinessCustomer.objects.create(
            name="Globex Online Europe", channel=company.channel, account=company.account, owner=manager,
            business_unit=manager.primary_unit, parent=company, legal_name="Globex Europe B.V.",
            registration_number="KVK 81234567", registration_agency="Kamer van Koophandel",
            registration_country="NL", tax_number="NL123456789B01", industry="Manufacturing",
            primary_email="eu@globex.example", billing_city="Rotterdam", billing_country="NL",
            purchase_limit=Decimal("5000.00"), currency="USD")
        out.write("  created business customer Globex Online Europe, a subsidiary of Globex Online")
    customers["Globex Online Europe"] = subsidiary
    tags = {t.name: t for t in LocationTag.objects.all()}
    for name, type_, tag_names, street, city, postal, region in [
            ("Cypress Creek HQ", "headquarters", ["billing"], "1 Globex Way", "Cypress Creek", "97001", "OR"),
            ("Portland Warehouse", "warehouse", ["shipping", "pickup"], "88 Dock Road", "Portland", "97203", "OR")]:
        location, created = Location.objects.get_or_create(
            customer=company, name=name, defaults={"type": type_, "street": street, "city": city, "postal_code": postal,
                                                   "region": region, "country": "US"})
        if created:
            location.tags.set([tags[t] for t in tag_names if t in tags])
            out.write(f"  created location {name}")
    people = {"admin": contacts["hank.scorpio@globex.example"], "buyer": contacts["lisa.harmon@globex.example"],
              "requester": contacts["homer.simpson@globex.example"]}
    for kind, contact in people.items():
        if not ContactCustomerAssignment.objects.filter(contact=contact, customer=company).exclude(type="primary").exists():
            assign_roles(contact, company, ["billing" if kind == "buyer" else "contact"], admin)
            out.write(f"  gave {contact} a role at Globex Online")
        move_to_group(company, contact, kind, admin)
    if not PurchaseRequest.objects.filter(customer=company).exists():
        now = timezone.now()
        # The expired one's mails would only put dead links in the output: they are not sent.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            expired = create_purchase_request(company, people["requester"], lines=[("Safety goggles", 40, "12.50")],
                                              comment="For the plant inspection.", user=manager, title="Safety goggles")
            ApprovalRequest.objects.filter(purchase_request=expired).update(expires_at=now - timedelta(days=1))
            expire_approvals()
        pending = create_purchase_request(
            company, people["requester"], lines=[("Reactor control panel", 1, "14500.00"), ("Installation", 1, "900.00")],
            comment="Replacement for sector 7G.", user=manager, title="Control panel for sector 7G")
        out.write(f"  recorded purchase requests {expired} (expired) and {pending} (pending: above the limit, "
                  f"its approval links were mailed to the customer's Admins; see the server output)")
