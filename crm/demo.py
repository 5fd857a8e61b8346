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
    return {"channels": channels, "accounts": accounts}
