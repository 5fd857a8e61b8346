"""Benchmark data: a realistic organization of N business customers, built fast.

`build(customers)` (the `bench_data` command) writes, into the configured database:
10 business units (a root, 3 regions, 6 sub-units; EMEA has exactly 3), 100 users (3
Administrators, 10 Managers, 87 Sales Representatives, roles given by
crm.services.set_roles), 5 channels, N customers with their emails and phones, N/5
accounts, N/2 contacts with email, phone and address, contact links and assignments,
about N activities, a few hundred shares, and the named fixtures the benchmark reads
(see FIXTURES below). Rows go in with COPY on PostgreSQL (bulk_create elsewhere), with
explicit ids, so nothing is read back; history is skipped (no history rows). PostgreSQL
ends with VACUUM (ANALYZE).

Everything is a function of the row number and the seed: the same size gives the same
data. Names come from word lists, so trigram search meets the spread of real names.
Bump DATA_VERSION when the data changes, so `manage.py bench` rebuilds its databases.
"""
import json
import time
import unicodedata
from array import array
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from itertools import chain
from math import gcd
from random import Random

from django.db import connection, transaction

DATA_VERSION = 2

# -- names the benchmark looks up --------------------------------------------------------------

ROOT_UNIT = "Northwind Group"
# (name, parent). EMEA has exactly three sub-units: the benchmark's Manager leads it.
UNITS = [
    (ROOT_UNIT, None),
    ("EMEA", ROOT_UNIT), ("Americas", ROOT_UNIT), ("APAC", ROOT_UNIT),
    ("DACH", "EMEA"), ("Nordics", "EMEA"), ("UK & Ireland", "EMEA"),
    ("US East", "Americas"), ("US West", "Americas"),
    ("Japan", "APAC"),
]
USERS_PER_UNIT = 10

ADMINISTRATOR, MANAGER, SALES_REP = "Administrator", "Manager", "Sales Representative"
# The three users the benchmark measures, by username: role and unit.
BENCH_ADMIN = "bench.admin"      # Administrator, in the root unit
BENCH_MANAGER = "bench.manager"  # Manager of EMEA (3 sub-units)
BENCH_REP = "bench.rep"          # Sales Representative in DACH
BENCH_USERS = ((ADMINISTRATOR, BENCH_ADMIN), (MANAGER, BENCH_MANAGER), (SALES_REP, BENCH_REP))

BUSY_CUSTOMER = "Bench Busy Customer GmbH"  # 50 activities, 10 contacts, 5 phones; in DACH, not the rep's
BIG_ACCOUNT = "Bench Twenty Group"          # 20 business customers over several units
RARE_TERM = "Xylandria"                     # in 3 customers, 2 accounts and 3 contacts
COMMON_WORD = "Logistics"                   # in about 1 customer name of 30

FIXTURES = {"busy_customer": BUSY_CUSTOMER, "big_account": BIG_ACCOUNT, "rare_term": RARE_TERM,
            "common_word": COMMON_WORD}

CHANNELS = [  # name, type, status, share of the customers (per cent)
    ("Direct Sales", "sales", "active", 40),
    ("Web Store", "commerce", "active", 25),
    ("Partner Network", "sales", "active", 15),
    ("Marketplace", "commerce", "active", 15),
    ("Trade Fairs", "sales", "inactive", 5),
]

# -- word lists --------------------------------------------------------------------------------

BRAND_HEADS = (
    "North South East West Blue Silver Iron Red Green Stone Oak Pine Maple Cedar Bright Clear Deep "
    "High Far Gold Copper Crystal Eagle Falcon Hawk Wolf Bear Fox Lion Star Sun Moon Sky Cloud Storm "
    "River Lake Bay Harbor Glen Ash Elm Birch Rose Amber Coral Jade Onyx Ruby Summit Peak Ridge Vale "
    "Meadow Prairie Desert Arctic Polar Tide Raven"
).split()
BRAND_TAILS = (
    "wind haven line bridge field ford gate wood stone brook crest point view ton well worth more land "
    "port side mark hurst leigh combe dale shire wick holm stead water light fall rock berg stad mont "
    "burg hill moor creek shore wall gard fjord"
).split()
ACCOUNT_NOUNS = (
    "Analytics Apparel Automotive Aviation Bakeries Beverages Biotech Brewing Builders Capital Ceramics "
    "Chemicals Clinics Coatings Components Construction Consulting Controls Dairy Design Devices "
    "Diagnostics Digital Distribution Electric Electronics Energy Engineering Enterprises Equipment "
    "Fabrics Farms Fasteners Finance Fisheries Foods Forge Furniture Glassworks Hardware Health "
    "Hospitality Instruments Insurance Interiors Labs Lighting Machinery Marine Materials Media Medical "
    "Metals Mills Mining Motors Networks Optics Packaging Paper Pharma Plastics Power Precision Printing "
    "Robotics Security Semiconductors Software Solar Steel Supplies Technologies Textiles Tools Transport "
    "Utilities Ventures Vineyards Aerospace Acoustics Agritech Outfitters Partners"
).split()
# Only when the accounts outnumber brand x noun: a place makes the name unique again.
PLACES = (
    "of Texas|of Bavaria|of Ontario|of Flanders|of Lombardy|of Wales|of Jutland|of Hokkaido|of Victoria|"
    "of Andalusia|of Normandy|of Saxony|of Tyrol|of Zealand|of Bohemia|of Oregon|of Quebec|of Kansai|"
    "of Alsace|of Cornwall|of Bergen|of Geneva|of Galicia|of Brittany|of Moravia|of Utah|of Maine|"
    "of Tuscany|of Kent|of Skane"
).split("|")
# The k-th customer of an account is named after it plus one of these (distinct per account).
BRANCHES = (
    "GmbH|Ltd|Inc.|Online|Services|Retail|Europe|Americas|Asia Pacific|Nordic|Iberia|Benelux|UK|France|"
    "Italia|Deutschland|Polska|Japan|Canada|Mexico|Brasil|Australia|Export|Direct|Web Shop|Field Service|"
    "Parts|Procurement|Manufacturing|" + COMMON_WORD
).split("|")
INDUSTRIES = (
    "Manufacturing|Software|Retail|Wholesale|Logistics and transport|Food & Beverage|Pharmaceuticals|"
    "Construction|Energy|Financial services|Healthcare|Automotive|Chemicals|Telecommunications|Media|"
    "Agriculture|Hospitality|Education|Aerospace|Textiles"
).split("|")
LEGAL_FORMS = {"DE": "GmbH", "AT": "GmbH", "CH": "AG", "SE": "AB", "NO": "AS", "DK": "ApS", "FI": "Oy",
               "GB": "Ltd", "IE": "Ltd", "US": "Inc.", "CA": "Inc.", "MX": "S.A. de C.V.", "BR": "Ltda.",
               "AU": "Pty Ltd", "SG": "Pte. Ltd.", "IN": "Pvt. Ltd.", "JP": "K.K.", "FR": "SAS", "NL": "B.V.",
               "PL": "Sp. z o.o."}
CURRENCY = {"DE": "EUR", "AT": "EUR", "FI": "EUR", "IE": "EUR", "FR": "EUR", "NL": "EUR", "CH": "CHF",
            "SE": "SEK", "NO": "NOK", "DK": "DKK", "GB": "GBP", "US": "USD", "CA": "CAD", "MX": "MXN",
            "BR": "BRL", "AU": "AUD", "SG": "USD", "IN": "INR", "JP": "JPY", "PL": "PLN"}
TLD = {"GB": "co.uk", "US": "com", "CA": "ca", "JP": "co.jp", "AU": "com.au", "BR": "com.br", "MX": "com.mx",
       "SG": "com.sg", "IN": "in"}
# city, region, country, phone prefix
CITIES = {
    "DE": [("Berlin", "Berlin", "+49 30"), ("Hamburg", "Hamburg", "+49 40"), ("Munich", "Bavaria", "+49 89"),
           ("Cologne", "North Rhine-Westphalia", "+49 221"), ("Frankfurt", "Hesse", "+49 69"),
           ("Stuttgart", "Baden-Wuerttemberg", "+49 711"), ("Leipzig", "Saxony", "+49 341")],
    "AT": [("Vienna", "Vienna", "+43 1"), ("Graz", "Styria", "+43 316"), ("Linz", "Upper Austria", "+43 732")],
    "CH": [("Zurich", "Zurich", "+41 44"), ("Basel", "Basel-Stadt", "+41 61"), ("Geneva", "Geneva", "+41 22")],
    "SE": [("Stockholm", "Stockholm", "+46 8"), ("Gothenburg", "Vastra Gotaland", "+46 31"), ("Malmo", "Skane", "+46 40")],
    "NO": [("Oslo", "Oslo", "+47 22"), ("Bergen", "Vestland", "+47 55")],
    "DK": [("Copenhagen", "Capital Region", "+45 33"), ("Aarhus", "Central Jutland", "+45 86")],
    "FI": [("Helsinki", "Uusimaa", "+358 9"), ("Tampere", "Pirkanmaa", "+358 3")],
    "GB": [("London", "Greater London", "+44 20"), ("Manchester", "Greater Manchester", "+44 161"),
           ("Birmingham", "West Midlands", "+44 121"), ("Leeds", "West Yorkshire", "+44 113"),
           ("Glasgow", "Scotland", "+44 141")],
    "IE": [("Dublin", "Leinster", "+353 1"), ("Cork", "Munster", "+353 21")],
    "FR": [("Paris", "Ile-de-France", "+33 1"), ("Lyon", "Auvergne-Rhone-Alpes", "+33 4")],
    "NL": [("Amsterdam", "North Holland", "+31 20"), ("Rotterdam", "South Holland", "+31 10")],
    "PL": [("Warsaw", "Masovia", "+48 22"), ("Krakow", "Lesser Poland", "+48 12")],
    "US": [("New York", "NY", "+1 212"), ("Boston", "MA", "+1 617"), ("Atlanta", "GA", "+1 404"),
           ("Chicago", "IL", "+1 312"), ("Miami", "FL", "+1 305"), ("Philadelphia", "PA", "+1 215"),
           ("San Francisco", "CA", "+1 415"), ("Seattle", "WA", "+1 206"), ("Los Angeles", "CA", "+1 213"),
           ("Denver", "CO", "+1 303"), ("Portland", "OR", "+1 503"), ("Austin", "TX", "+1 512")],
    "CA": [("Toronto", "ON", "+1 416"), ("Vancouver", "BC", "+1 604"), ("Montreal", "QC", "+1 514")],
    "MX": [("Mexico City", "CDMX", "+52 55"), ("Monterrey", "Nuevo Leon", "+52 81")],
    "BR": [("Sao Paulo", "SP", "+55 11"), ("Rio de Janeiro", "RJ", "+55 21")],
    "AU": [("Sydney", "NSW", "+61 2"), ("Melbourne", "VIC", "+61 3")],
    "SG": [("Singapore", "Singapore", "+65")],
    "IN": [("Bengaluru", "Karnataka", "+91 80"), ("Mumbai", "Maharashtra", "+91 22")],
    "JP": [("Tokyo", "Tokyo", "+81 3"), ("Osaka", "Osaka", "+81 6"), ("Nagoya", "Aichi", "+81 52"),
           ("Yokohama", "Kanagawa", "+81 45")],
}
# Where the records of each unit are (by country).
UNIT_COUNTRIES = {
    ROOT_UNIT: ["DE", "GB", "US", "FR", "NL", "JP"], "EMEA": ["FR", "NL", "PL", "DE", "GB"],
    "DACH": ["DE", "DE", "DE", "AT", "CH"], "Nordics": ["SE", "NO", "DK", "FI"], "UK & Ireland": ["GB", "GB", "IE"],
    "Americas": ["US", "CA", "MX", "BR"], "US East": ["US"], "US West": ["US"], "APAC": ["AU", "SG", "IN", "JP"],
    "Japan": ["JP"],
}
STREETS = (
    "Main Street|Market Street|Station Road|Harbour Road|Mill Lane|Church Street|Park Avenue|High Street|"
    "Oak Avenue|Industrial Park|Commerce Way|Riverside Drive|Hauptstrasse|Bahnhofstrasse|Gartenweg|"
    "Lindenallee|Schillerstrasse|Kungsgatan|Storgatan|Rue de la Paix|Via Roma|Queen Street|King Street|"
    "Elm Street|Lake Shore Drive|Sunset Boulevard|Broadway|Chuo-dori|Meiji-dori|Collins Street"
).split("|")
FIRST_NAMES = (
    "Anna Lukas Sofia Elias Emma Noah Mia Leon Hannah Paul Lena Felix Clara Jonas Laura Maximilian Julia "
    "Ben Sarah David Lisa Tom Marie Jan Nina Erik Ingrid Lars Astrid Nils Freya Oskar Sigrid Henrik Maja "
    "Olivia Oliver Amelia George Isla Harry Ava Jack Emily Charlie James Grace Thomas Chloe William "
    "Sophie Daniel Ella Michael Jessica Robert Jennifer John Linda Richard Patricia Joseph Barbara "
    "Charles Susan Christopher Karen Matthew Nancy Anthony Betty Mark Helen Steven Sandra Andrew Donna "
    "Joshua Carol Kevin Ruth Brian Sharon Lucia Mateo Valentina Santiago Camila Diego Isabella Pedro "
    "Yuki Haruto Sakura Sota Aoi Ren Hina Kaito Yui Riku Mei Hiroshi Keiko Takashi Akiko Priya Arjun "
    "Ananya Rohan Wei Li Jun Mei-Ling Chen Hao Marta Piotr Katarzyna Tomasz Agnieszka Pierre Camille "
    "Louis Chloé Hugo Manon Jérôme Zoë Björn Søren Jürgen Åsa"
).split()
LAST_NAMES = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf "
    "Schröder Neumann Schwarz Braun Zimmermann Krüger Hofmann Hartmann Lange Werner Krause Lehmann Köhler "
    "Maier Huber Gruber Steiner Moser Keller Brunner Baumann Frei Andersson Johansson Karlsson Nilsson "
    "Eriksson Larsson Olsen Hansen Jensen Nielsen Pedersen Virtanen Korhonen Smith Jones Williams Taylor "
    "Brown Davies Evans Wilson Thomas Roberts Johnson Walker Wright Robinson Thompson White Hughes Edwards "
    "Green Hall Wood Harris Lewis Martin Jackson Clarke Murphy Kelly O'Brien Byrne Ryan Walsh Miller "
    "Davis Garcia Rodriguez Martinez Hernandez Lopez Gonzalez Anderson Moore Lee Perez Sanchez Ramirez "
    "Torres Flores Rivera Gomez Diaz Reyes Cruz Morales Ortiz Gutierrez Chavez Silva Santos Oliveira "
    "Souza Costa Pereira Almeida Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi "
    "Kato Yoshida Yamada Sasaki Matsumoto Inoue Kimura Shimizu Patel Sharma Singh Kumar Gupta Wang Zhang "
    "Liu Chen Yang Huang Zhao Wu Zhou Nowak Kowalski Wiśniewski Wójcik Kamińska Dubois Durand Lefebvre "
    "Moreau Laurent Simon Michel Bernard Rossi Russo Ferrari Esposito Bianchi Romano Colombo de Vries "
    "van Dijk Bakker Jansen Visser Smit Meijer"
).split()
JOB_TITLES = (
    "Chief Executive Officer|Chief Financial Officer|Chief Operating Officer|Head of Purchasing|"
    "Purchasing Manager|Buyer|Senior Buyer|Procurement Specialist|Accounts Payable Clerk|Finance Director|"
    "Controller|IT Director|Head of Logistics|Warehouse Manager|Operations Manager|Plant Manager|"
    "Quality Manager|Sales Director|Office Manager|Managing Director|Project Manager|Category Manager|"
    "Supply Chain Manager|Technical Director|Marketing Manager|Assistant to the CEO|Head of Facilities|"
    "Product Manager|Engineer|Consultant"
).split("|")
PREFIXES = ["", "", "", "", "", "", "Dr.", "Ms.", "Mr.", "Prof."]
EMAIL_LOCALS = ["info", "sales", "orders", "office", "purchasing", "contact", "hello", "service", "team", "mail"]
SUBJECTS = {
    "call": ["Intro call", "Quarterly review", "Pricing question", "Follow-up on quote", "Delivery delay",
             "Renewal discussion", "Complaint about invoice", "Product demo follow-up", "Check-in",
             "Volume discount", "New contact introduced", "Payment terms"],
    "email": ["Quote sent", "Catalogue 2025", "Order confirmation", "Invoice copy", "Meeting notes",
              "Price list update", "Contract draft", "Shipping schedule", "Thank you for your order",
              "Product information"],
    "note": ["", "", "Visited the plant", "Budget cycle starts in Q3", "Prefers email over calls",
             "New purchasing manager", "Switching ERP system", "Trade fair contact"],
    "task": ["Send proposal", "Call back", "Prepare renewal", "Update price list", "Book a visit",
             "Check credit limit", "Send samples", "Invite to webinar"],
}
SENTENCES = [
    "Happy with delivery times.", "Asked for a volume discount from next quarter.",
    "Wants invoices as PDF to the accounts payable address.", "Interested in the new product line.",
    "Budget approval expected next month.", "Two competitors are also quoting.",
    "Requested samples for the quality lab.", "Payment was late twice this year.",
    "Will introduce us to their sister company.", "Prefers calls on Tuesday mornings.",
    "Moving to a new warehouse in the autumn.", "Needs the certificates before ordering.",
    "Asked about cold-chain options.", "Considering a framework contract for two years.",
]

START = datetime(2021, 1, 1, tzinfo=dt_timezone.utc)
SPAN = (datetime(2025, 6, 1, tzinfo=dt_timezone.utc) - START).total_seconds()


def ascii_slug(text, sep=""):
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return sep.join("".join(c for c in part if c.isalnum()) for part in plain.lower().split())


M64 = (1 << 64) - 1


def mix(i, salt):
    """A deterministic hash of a row number and a salt, 32 bits (splitmix64's finaliser)."""
    x = (i * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03 + 1) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return (x ^ (x >> 31)) >> 32


def permutation(size, seed):
    """A bijection of range(size) that scatters neighbours: i -> (i * p + seed) % size."""
    p = 1_000_003
    while gcd(p, size) != 1:
        p += 2
    return lambda i: (i * p + seed) % size


class Names:
    """Unique account names: brand x noun, then brand x noun x place."""

    def __init__(self):
        self.brands = [h + t for h in BRAND_HEADS for t in BRAND_TAILS]
        self.tier1 = len(self.brands) * len(ACCOUNT_NOUNS)
        self.tier2 = self.tier1 * len(PLACES)
        self.p1 = permutation(self.tier1, 7)
        self.p2 = permutation(self.tier2, 11)

    def account(self, i):
        if i < self.tier1:
            j = self.p1(i)
            return f"{self.brands[j % len(self.brands)]} {ACCOUNT_NOUNS[j // len(self.brands)]}"
        i -= self.tier1
        if i >= self.tier2:
            raise ValueError("too many accounts for the word lists")
        j = self.p2(i)
        brand, j = self.brands[j % len(self.brands)], j // len(self.brands)
        noun, place = ACCOUNT_NOUNS[j % len(ACCOUNT_NOUNS)], PLACES[j // len(ACCOUNT_NOUNS)]
        return f"{brand} {noun} {place}"


# -- writing rows ------------------------------------------------------------------------------

def _copy_text(value):
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "obj") and value.__class__.__name__ == "Jsonb":  # a JSONField default
        value = json.dumps(value.obj)
    elif isinstance(value, (dict, list)):
        value = json.dumps(value)
    text = str(value)
    if "\\" in text or not text.isprintable():
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


class Loader:
    """Writes rows of a model: COPY on PostgreSQL, bulk_create in batches elsewhere.

    `load(model, columns, rows)`: columns are attnames (`owner_id`), rows tuples in that
    order; the model's other fields get their defaults (a field added to a model later
    needs no change here unless it is required and has no default)."""

    BATCH = 2000
    DEFER_INDEXES_FROM = 5_000  # expected rows; above, indexes and keys are built after the load (PostgreSQL)

    def __init__(self, out=None):
        self.out = out
        self.pg = connection.vendor == "postgresql"
        self.timings = []  # (what, rows, seconds)
        self._deferred = []  # (table, [CREATE INDEX ...], [ALTER TABLE ... ADD CONSTRAINT ...])

    def say(self, text):
        if self.out is not None:
            self.out.write(text)

    def record(self, what, rows, seconds, note=""):
        self.timings.append((what, rows, seconds))
        rate = f"{rows / seconds:>9,.0f} rows/s" if rows and seconds > 0 else ""
        self.say(f"  {what:<46} {rows:>10,} {seconds:7.1f} s {rate} {note}".rstrip())

    @staticmethod
    def next_id(model):
        from django.db.models import Max

        return (model._default_manager.aggregate(m=Max("pk"))["m"] or 0) + 1

    def load(self, model, columns, rows, expected=0):
        start = time.perf_counter()
        table = model._meta.db_table
        if self.pg and expected >= self.DEFER_INDEXES_FROM:
            self._drop_secondary(table)
        count = self._copy(model, columns, rows) if self.pg else self._bulk(model, columns, rows)
        self.record(table, count, time.perf_counter() - start)
        return count

    def _fields(self, model, columns):
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(columns) - set(by_attname)
        if unknown:
            raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
        extra = []
        for f in model._meta.concrete_fields:
            if f.attname in columns or f.primary_key or f.has_db_default():
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value = datetime.now(dt_timezone.utc)
            else:
                value = f.get_default()
            extra.append((f, value))
        return by_attname, extra

    def _copy(self, model, columns, rows):
        by_attname, extra = self._fields(model, columns)
        names = list(columns) + [f.attname for f, _ in extra]
        tail = [_copy_text(f.get_db_prep_save(v, connection)) for f, v in extra]
        cols = ", ".join(connection.ops.quote_name(by_attname[c].column) for c in names)
        sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({cols}) FROM STDIN"
        width = len(columns)
        count = 0
        text = _copy_text
        with connection.cursor() as cursor:
            with cursor.cursor.copy(sql) as copy:
                buf = []
                for row in rows:
                    if not count and not buf and len(row) != width:
                        raise ValueError(f"{model.__name__}: rows have {len(row)} values for {width} columns")
                    values = [v if v.__class__ is str and "\\" not in v and v.isprintable() else text(v) for v in row]
                    buf.append("\t".join(values + tail if tail else values))
                    if len(buf) >= 5000:
                        copy.write("\n".join(buf) + "\n")
                        count += len(buf)
                        buf = []
                if buf:
                    copy.write("\n".join(buf) + "\n")
                    count += len(buf)
        return count

    def _bulk(self, model, columns, rows):
        timestamps = [f for f in model._meta.concrete_fields
                      if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
        given = [(f, f.auto_now, f.auto_now_add) for f in timestamps if f.attname in columns]
        count = 0
        try:
            for f, _, _ in given:  # keep the created_at / updated_at we give
                f.auto_now = f.auto_now_add = False
            batch = []
            for row in rows:
                if len(row) != len(columns):
                    raise ValueError(f"{model.__name__}: rows have {len(row)} values for {len(columns)} columns")
                batch.append(model(**dict(zip(columns, row))))
                if len(batch) >= self.BATCH:
                    model._default_manager.bulk_create(batch)
                    count += len(batch)
                    batch = []
            if batch:
                model._default_manager.bulk_create(batch)
                count += len(batch)
        finally:
            for f, auto_now, auto_now_add in given:
                f.auto_now, f.auto_now_add = auto_now, auto_now_add
        return count

    def _drop_secondary(self, table):
        """Drop the table's plain indexes and foreign keys, recreated by finish(): one sort per
        index after the load instead of millions of index inserts and key checks. Primary
        keys and unique constraints stay (they check the data as it comes)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
                   JOIN pg_class i ON i.oid = x.indexrelid
                   WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND NOT x.indisunique
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)""",
                [table])
            indexes = cursor.fetchall()
            cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                           "WHERE conrelid = %s::regclass AND contype = 'f'", [table])
            keys = cursor.fetchall()
            for name, _ in keys:
                cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        self._deferred.append((table, [d for _, d in indexes],
                               [f'ALTER TABLE "{table}" ADD CONSTRAINT "{n}" {d}' for n, d in keys]))

    def finish(self):
        """Rebuild the dropped indexes and keys, reset the id sequences, check every key."""
        from django.apps import apps
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            if self._deferred:
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for table, indexes, keys in self._deferred:
                t0 = time.perf_counter()
                for sql in indexes + keys:
                    cursor.execute(sql)
                self.record(f"{table} (indexes and keys)", 0, time.perf_counter() - t0,
                            f"{len(indexes)} indexes, {len(keys)} keys")
            self._deferred = []
            t0 = time.perf_counter()
            for sql in connection.ops.sequence_reset_sql(no_style(), apps.get_models(include_auto_created=True)):
                cursor.execute(sql)
        connection.check_constraints()
        self.record("(sequences, key check)", 0, time.perf_counter() - t0)


# -- the organization --------------------------------------------------------------------------

def _counts(rng, total, slots, choices, high=None):
    """`slots` counts drawn from `choices`, adjusted to sum to `total`, within [min(choices), high]."""
    low = min(choices)
    high = high or max(choices)
    counts = array("l", (rng.choice(choices) for _ in range(slots)))
    diff = total - sum(counts)
    if not low * slots <= total <= high * slots:
        raise ValueError(f"cannot spread {total} over {slots} slots of {low}..{high}")
    i = 0
    while diff:
        j = mix(i, 99) % slots
        if diff > 0 and counts[j] < high:
            counts[j] += 1
            diff -= 1
        elif diff < 0 and counts[j] > low:
            counts[j] -= 1
            diff += 1
        i += 1
    return counts


FIRST_SLUGS = {name: ascii_slug(name) for name in FIRST_NAMES}
LAST_SLUGS = {name: ascii_slug(name, "-") for name in LAST_NAMES}


class Builder:
    """Builds it all in one transaction. Accounts own contiguous runs of customer ids and of
    contact ids, so every link is computed from ids, never read back."""

    def __init__(self, customers, out=None, seed=1, users_per_unit=USERS_PER_UNIT):
        if customers < 50:
            raise ValueError("bench_data needs at least 50 customers")
        if users_per_unit < 3:
            raise ValueError("bench_data needs at least 3 users per unit")
        self.n = customers
        self.per_unit = users_per_unit
        self.out = out
        self.seed = seed
        self.loader = Loader(out)
        self._fixtures = {}

    def say(self, text):
        if self.out is not None:
            self.out.write(text)

    # - small tables, through the ORM -

    def organization(self):
        from channels.models import Channel
        from crm.models import BusinessUnit, User
        from crm.services import set_roles

        t0 = time.perf_counter()
        self.units = {}
        for name, parent in UNITS:
            self.units[name] = BusinessUnit.objects.create(name=name, parent=self.units.get(parent))
        self.unit_names = [name for name, _ in UNITS]
        self.channels = []  # 100 entries: a customer's channel is channels[hash % 100]
        for name, type_, status, share in CHANNELS:
            channel, _ = Channel.objects.get_or_create(
                name=name, defaults={"type": type_, "status": status, "entities": "business_customer"})
            self.channels += [channel.pk] * share
        self.channel_ids = sorted(set(self.channels))

        # users[k] is in unit k // per_unit: position 0 is the unit's Manager, positions 1-3 of the
        # root are the Administrators, all others Sales Representatives.
        rng = Random(self.seed + 1)
        self.users, self.user_unit = [], []
        taken = set(User.objects.values_list("username", flat=True))
        special = {(ROOT_UNIT, 1): BENCH_ADMIN, ("EMEA", 0): BENCH_MANAGER, ("DACH", 1): BENCH_REP}
        for k in range(len(UNITS) * self.per_unit):
            unit_name = self.unit_names[k // self.per_unit]
            pos = k % self.per_unit
            role = MANAGER if pos == 0 else ADMINISTRATOR if unit_name == ROOT_UNIT and pos <= 3 else SALES_REP
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            username = special.get((unit_name, pos)) or f"{FIRST_SLUGS[first]}.{LAST_SLUGS[last]}"
            suffix = 1
            while username in taken:
                suffix += 1
                username = f"{FIRST_SLUGS[first]}.{LAST_SLUGS[last]}{suffix}"
            taken.add(username)
            unit = self.units[unit_name]
            user = User.objects.create_user(
                username, email=f"{username}@northwind.example", password=None, first_name=first,
                last_name=last, primary_unit=unit, is_staff=role == ADMINISTRATOR)
            user.business_units.add(unit)
            set_roles(user, [role])
            self.users.append(user.pk)
            self.user_unit.append(unit.pk)
        self.by_username = dict(User.objects.filter(pk__in=self.users).values_list("username", "pk"))
        self.unit_users = {name: self.users[i * self.per_unit:(i + 1) * self.per_unit]
                           for i, name in enumerate(self.unit_names)}
        self.loader.record("units, users and their roles, channels", len(self.users), time.perf_counter() - t0)

    # - helpers: everything of row i is a function of i -

    def owner(self, i, salt):
        """(owner pk, unit pk, unit name) of row i: each user owns 1/100, each unit 1/10."""
        k = mix(i, salt) % len(self.users)
        return self.users[k], self.user_unit[k], self.unit_names[k // self.per_unit]

    @staticmethod
    def stamp(i, n, salt):
        """created_at, updated_at: rising with the row number over four and a half years."""
        created = START + timedelta(seconds=SPAN * (i / max(n, 1)) + mix(i, salt) % 86400)
        return created, created + timedelta(seconds=mix(i, salt + 1) % (86400 * 90))

    @staticmethod
    def place(i, unit_name, salt):
        countries = UNIT_COUNTRIES[unit_name]
        h = mix(i, salt)
        country = countries[h % len(countries)]
        cities = CITIES[country]
        city, region, prefix = cities[(h >> 8) % len(cities)]
        return country, city, region, prefix

    @staticmethod
    def phone(prefix, i, salt):
        return f"{prefix} {mix(i, salt) % 9_000_000 + 1_000_000}"

    def slug(self, a):
        return ascii_slug(self.names.account(a))

    @staticmethod
    def domain(slug, country):
        return f"{slug}.{TLD.get(country, country.lower())}"

    def person(self, p):
        h = mix(p, 20)
        return FIRST_NAMES[h % len(FIRST_NAMES)], LAST_NAMES[(h >> 8) % len(LAST_NAMES)], h

    def runs(self, start, count):
        """(account index, its first id, how many) for every account."""
        for a in range(self.n_accounts):
            yield a, start[a], count[a]

    def plan(self):
        from accounts.models import Account
        from activities.models import Activity
        from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone
        from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone

        n = self.n
        self.n_accounts = n // 5
        self.n_contacts = n // 2
        self.n_activities = n
        self.names = Names()
        rng = Random(self.seed + 2)
        # Customers per account: mean 5, 1 to 30 (BRANCHES keeps names distinct within an account).
        self.cust_count = _counts(rng, n, self.n_accounts, [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12, 19],
                                  high=len(BRANCHES))
        self.cont_count = _counts(rng, self.n_contacts, self.n_accounts, [0, 1, 1, 2, 2, 3, 3, 4, 6], high=12)
        self.ids = {m: self.loader.next_id(m) for m in (
            Account, BusinessCustomer, Contact, CustomerEmail, CustomerPhone, ContactEmail, ContactPhone,
            ContactAddress, ContactCustomerAssignment, Activity)}
        self.first_account = self.ids[Account]
        self.first_customer = self.ids[BusinessCustomer]
        self.first_contact = self.ids[Contact]
        self.cust_start = array("l", [0]) * self.n_accounts
        self.cont_start = array("l", [0]) * self.n_accounts
        c, p = self.first_customer, self.first_contact
        for a in range(self.n_accounts):
            self.cust_start[a], self.cont_start[a] = c, p
            c += self.cust_count[a]
            p += self.cont_count[a]
        # The named fixtures come right after the bulk rows.
        self.next_fixture = {Account: self.first_account + self.n_accounts, BusinessCustomer: c, Contact: p}

    # - the bulk -

    def accounts(self):
        from accounts.models import Account

        cols = ["id", "name", "website", "industry", "referred_by_id", "default_contact_id", "description",
                "owner_id", "business_unit_id", "created_at", "updated_at"]
        first = self.first_account

        def rows():
            for a in range(self.n_accounts):
                owner, unit, unit_name = self.owner(a, 1)
                country, *_ = self.place(a, unit_name, 2)
                created, updated = self.stamp(a, self.n_accounts, 3)
                h = mix(a, 4)
                referred = first + (h >> 8) % a if a and h % 20 == 0 else None
                contact = self.cont_start[a] if self.cont_count[a] else None
                yield (first + a, self.names.account(a), f"https://www.{self.domain(self.slug(a), country)}",
                       INDUSTRIES[(h >> 4) % len(INDUSTRIES)], referred, contact,
                       SENTENCES[(h >> 12) % len(SENTENCES)] if h % 3 == 0 else "", owner, unit, created, updated)

        self.loader.load(Account, cols, chain(rows(), self.fixture_rows(Account)), self.n_accounts)

    def customer_rows(self):
        """(account index, slug, customer id, its branch position, owner, unit, unit name, country, city,
        region, phone prefix, hash) for every customer, in id order."""
        for a, start, count in self.runs(self.cust_start, self.cust_count):
            slug = self.slug(a)
            for k in range(count):
                i = start + k
                owner, unit, unit_name = self.owner(i, 6)
                yield (a, slug, i, k, owner, unit, unit_name) + self.place(i, unit_name, 7) + (mix(i, 9),)

    def customers(self):
        from customers.models import BusinessCustomer

        cols = ["id", "name", "channel_id", "account_id", "owner_id", "business_unit_id", "legal_name",
                "registration_number", "registration_date", "tax_number", "industry", "employees", "website",
                "primary_email", "primary_phone", "billing_street", "billing_city", "billing_postal_code",
                "billing_region", "billing_country", "shipping_street", "shipping_city", "shipping_postal_code",
                "shipping_region", "shipping_country", "primary_contact_id", "lifetime_value", "currency",
                "description", "created_at", "updated_at"]
        cents = Decimal("0.01")

        def rows():
            base, rot, last_a = None, 0, -1
            for a, slug, i, k, owner, unit, unit_name, country, city, region, prefix, h in self.customer_rows():
                if a != last_a:
                    base, rot, last_a = self.names.account(a), mix(a, 5) % len(BRANCHES), a
                    contact = self.cont_start[a] if self.cont_count[a] else None
                created, updated = self.stamp(i - self.first_customer, self.n, 8)
                domain = self.domain(slug, country)
                street = f"{STREETS[(h >> 3) % len(STREETS)]} {h % 180 + 1}"
                postal = str((h >> 5) % 90000 + 10000)
                ship = h % 4 == 0
                yield (i, f"{base} {BRANCHES[(rot + k) % len(BRANCHES)]}", self.channels[(h >> 7) % 100],
                       self.first_account + a, owner, unit, f"{base} {LEGAL_FORMS.get(country, 'Ltd')}",
                       f"HRB {(h >> 2) % 900000 + 100000}" if h % 3 else "",
                       date(1950 + (h >> 9) % 70, 1 + (h >> 3) % 12, 1 + (h >> 6) % 28) if h % 3 else None,
                       f"{country}{(h >> 1) % 900_000_000 + 100_000_000}", INDUSTRIES[(h >> 11) % len(INDUSTRIES)],
                       (h >> 4) % 5000 + 1, f"https://{domain}",
                       f"{EMAIL_LOCALS[(h >> 13) % len(EMAIL_LOCALS)]}@{domain}", self.phone(prefix, i, 10),
                       street, city, postal, region, country,
                       street if ship else "", city if ship else "", postal if ship else "",
                       region if ship else "", country if ship else "",
                       contact, (Decimal((h >> 10) % 2_000_000) * ((h >> 2) % 9 + 1) / 100).quantize(cents),
                       CURRENCY.get(country, "USD"),
                       SENTENCES[(h >> 14) % len(SENTENCES)] if h % 5 == 0 else "", created, updated)

        self.loader.load(BusinessCustomer, cols, chain(rows(), self.fixture_rows(BusinessCustomer)), self.n)

    def customer_points(self):
        """Every customer's primary email and phone rows (the values copied on the customer),
        a third of them a billing email, a fifth a second phone."""
        from customers.models import CustomerEmail, CustomerPhone

        def emails():
            pk = self.ids[CustomerEmail]
            for a, slug, i, k, owner, unit, unit_name, country, city, region, prefix, h in self.customer_rows():
                domain = self.domain(slug, country)
                yield (pk, i, f"{EMAIL_LOCALS[(h >> 13) % len(EMAIL_LOCALS)]}@{domain}", "work", True)
                pk += 1
                if h % 3 == 0:
                    yield (pk, i, f"accounts@{domain}", "billing", False)
                    pk += 1
            self.ids[CustomerEmail] = pk

        def phones():
            pk = self.ids[CustomerPhone]
            for a, slug, i, k, owner, unit, unit_name, country, city, region, prefix, h in self.customer_rows():
                yield (pk, i, self.phone(prefix, i, 10), "work", True)
                pk += 1
                if (h >> 20) % 5 == 0:
                    yield (pk, i, self.phone(prefix, i, 12), "mobile", False)
                    pk += 1
            self.ids[CustomerPhone] = pk

        cols = ["id", "customer_id", "email", "kind", "is_primary"]
        self.loader.load(CustomerEmail, cols, chain(emails(), self.fixture_rows(CustomerEmail)), self.n)
        cols = ["id", "customer_id", "phone", "kind", "is_primary"]
        self.loader.load(CustomerPhone, cols, chain(phones(), self.fixture_rows(CustomerPhone)), self.n)

    def contact_rows(self):
        for a, start, count in self.runs(self.cont_start, self.cont_count):
            if not count:
                continue
            slug = self.slug(a)
            for k in range(count):
                p = start + k
                first, last, h = self.person(p)
                owner, unit, unit_name = self.owner(p, 21)
                country, city, region, prefix = self.place(p, unit_name, 22)
                email = f"{FIRST_SLUGS[first]}.{LAST_SLUGS[last]}@{self.domain(slug, country)}"
                yield a, p, k, first, last, h, owner, unit, country, city, region, prefix, email

    def contacts(self):
        from contacts.models import Contact, ContactAddress, ContactEmail, ContactPhone

        cols = ["id", "name_prefix", "first_name", "middle_name", "last_name", "name_suffix", "gender", "birthday",
                "job_title", "description", "source", "email", "phone", "linkedin_url", "assigned_to_id",
                "reports_to_id", "owner_id", "business_unit_id", "created_at", "updated_at"]

        def rows():
            for a, p, k, first, last, h, owner, unit, country, city, region, prefix, email in self.contact_rows():
                created, updated = self.stamp(p - self.first_contact, self.n_contacts, 23)
                yield (p, PREFIXES[(h >> 16) % len(PREFIXES)], first, "", last, "",
                       ("female", "male", "", "")[(h >> 18) % 4],
                       date(1955 + (h >> 3) % 45, 1 + (h >> 5) % 12, 1 + (h >> 7) % 28) if h % 4 == 0 else None,
                       JOB_TITLES[(h >> 20) % len(JOB_TITLES)],
                       SENTENCES[(h >> 24) % len(SENTENCES)] if h % 6 == 0 else "",
                       ("website", "referral", "trade_fair", "call", "email", "other")[(h >> 22) % 6], email,
                       self.phone(prefix, p, 24),
                       f"https://www.linkedin.com/in/{FIRST_SLUGS[first]}-{LAST_SLUGS[last]}-{p}" if h % 3 == 0 else "",
                       owner, self.cont_start[a] if k and (h >> 26) % 5 < 2 else None, owner, unit, created, updated)

        self.loader.load(Contact, cols, chain(rows(), self.fixture_rows(Contact)), self.n_contacts)

        def children(kind):
            pk = self.ids[kind]
            for a, p, k, first, last, h, owner, unit, country, city, region, prefix, email in self.contact_rows():
                if kind is ContactEmail:
                    yield (pk, p, email, True)
                    pk += 1
                    if h % 5 == 0:
                        yield (pk, p, f"{FIRST_SLUGS[first][:1]}{LAST_SLUGS[last]}{h % 100}@mailbox.example", False)
                        pk += 1
                elif kind is ContactPhone:
                    yield (pk, p, self.phone(prefix, p, 24), True)
                    pk += 1
                else:
                    yield (pk, p, ("billing", "shipping", "other")[h % 3], f"{STREETS[(h >> 9) % len(STREETS)]} "
                           f"{h % 200 + 1}", city, str((h >> 11) % 90000 + 10000), region, country, True)
                    pk += 1
            self.ids[kind] = pk

        self.loader.load(ContactEmail, ["id", "contact_id", "email", "is_primary"],
                         chain(children(ContactEmail), self.fixture_rows(ContactEmail)), self.n_contacts)
        self.loader.load(ContactPhone, ["id", "contact_id", "phone", "is_primary"],
                         chain(children(ContactPhone), self.fixture_rows(ContactPhone)), self.n_contacts)
        self.loader.load(ContactAddress, ["id", "contact_id", "type", "street", "city", "postal_code", "region",
                                          "country", "is_primary"],
                         chain(children(ContactAddress), self.fixture_rows(ContactAddress)), self.n_contacts)

    def contact_links(self):
        """Contacts belong to their account (one in ten to the next account too) and play a part
        for one of its customers (the first contact is the primary one)."""
        from contacts.models import Contact, ContactCustomerAssignment

        through = Contact.accounts.through

        def links():
            for a, start, count in self.runs(self.cont_start, self.cont_count):
                for p in range(start, start + count):
                    yield (p, self.first_account + a)
                    if mix(p, 30) % 10 == 0 and self.n_accounts > 1:
                        yield (p, self.first_account + (a + 1) % self.n_accounts)

        self.loader.load(through, ["contact_id", "account_id"], chain(links(), self.fixture_rows(through)),
                         self.n_contacts)
        types = ["billing", "logistics", "decision_maker", "other"]

        def assignments():
            pk = self.ids[ContactCustomerAssignment]
            for a, start, count in self.runs(self.cont_start, self.cont_count):
                for k in range(count):
                    p = start + k
                    created, updated = self.stamp(p - self.first_contact, self.n_contacts, 23)
                    yield (pk, p, self.cust_start[a] + k % self.cust_count[a],
                           "primary" if k == 0 else types[mix(p, 31) % 4], created, updated)
                    pk += 1
            self.ids[ContactCustomerAssignment] = pk

        self.loader.load(ContactCustomerAssignment,
                         ["id", "contact_id", "customer_id", "type", "created_at", "updated_at"],
                         chain(assignments(), self.fixture_rows(ContactCustomerAssignment)), self.n_contacts)

    def activities(self):
        """About one activity per customer: 60 % on customers, 20 % on accounts, 20 % on contacts,
        three in four by the record's owner."""
        from django.contrib.contenttypes.models import ContentType

        from accounts.models import Account
        from activities.models import Activity
        from contacts.models import Contact
        from customers.models import BusinessCustomer

        # (content type, first id, count, salt of the owner, offset of the owner's row number)
        targets = [
            (ContentType.objects.get_for_model(BusinessCustomer).pk, self.first_customer, self.n, 6, True),
            (ContentType.objects.get_for_model(Account).pk, self.first_account, self.n_accounts, 1, False),
            (ContentType.objects.get_for_model(Contact).pk, self.first_contact, self.n_contacts, 21, True),
        ]
        end = datetime(2025, 6, 1, tzinfo=dt_timezone.utc)
        kinds = ("call", "call", "email", "email", "note", "task")

        def rows():
            pk = self.ids[Activity]
            for i in range(self.n_activities):
                h = mix(i, 40)
                ct, first, count, salt, by_id = targets[0 if h % 10 < 6 else 1 if h % 10 < 8 else 2]
                offset = (h >> 4) % count
                obj = first + offset
                by = self.owner(obj if by_id else offset, salt)[0] if (h >> 2) % 4 else \
                    self.users[(h >> 6) % len(self.users)]
                kind = kinds[(h >> 8) % 6]
                occurred = START + timedelta(seconds=mix(i, 41) % int(SPAN))
                subjects = SUBJECTS[kind]
                task = kind == "task"
                done = task and occurred < end - timedelta(days=30) and h % 7 != 0
                yield (pk, kind, subjects[(h >> 11) % len(subjects)], SENTENCES[(h >> 15) % len(SENTENCES)],
                       ("out", "in")[(h >> 19) % 2] if kind == "call" else "",
                       (h >> 20) % 45 + 1 if kind == "call" else None,
                       f"contact{obj}@mailbox.example" if kind == "email" else "",
                       (occurred + timedelta(days=(h >> 26) % 30)).date() if task else None, done,
                       occurred + timedelta(days=1) if done else None, occurred, by, occurred, occurred, ct, obj)
                pk += 1
            self.ids[Activity] = pk

        cols = ["id", "kind", "subject", "body", "direction", "duration", "to_address", "due_date", "done", "done_at",
                "occurred_at", "created_by_id", "created_at", "updated_at", "content_type_id", "object_id"]
        self.loader.load(Activity, cols, chain(rows(), self.fixture_rows(Activity)), self.n_activities)

    def shares(self):
        """A few hundred shares of single records with users (one in five for editing), a few
        dozen with whole units; 20 of each entity with the benchmark's rep and manager."""
        from django.contrib.auth.models import Permission

        from accounts.models import Account, AccountGroupObjectPermission, AccountUserObjectPermission
        from contacts.models import Contact, ContactGroupObjectPermission, ContactUserObjectPermission
        from customers.models import (BusinessCustomer, BusinessCustomerGroupObjectPermission,
                                      BusinessCustomerUserObjectPermission)

        rng = Random(self.seed + 3)
        groups = [unit.group_id for unit in self.units.values()]
        bench_users = [self.by_username[BENCH_REP], self.by_username[BENCH_MANAGER]]
        plan = [(BusinessCustomer, BusinessCustomerUserObjectPermission, BusinessCustomerGroupObjectPermission,
                 self.first_customer, self.n, 300),
                (Account, AccountUserObjectPermission, AccountGroupObjectPermission, self.first_account,
                 self.n_accounts, 100),
                (Contact, ContactUserObjectPermission, ContactGroupObjectPermission, self.first_contact,
                 self.n_contacts, 100)]
        for model, user_model, group_model, first, count, how_many in plan:
            name = model._meta.model_name
            perms = dict(Permission.objects.filter(content_type__app_label=model._meta.app_label,
                                                   codename__in=[f"view_{name}", f"change_{name}"])
                         .values_list("codename", "pk"))
            seen, rows = set(), []
            for s in range(how_many):
                user = bench_users[s % 2] if s < 40 else self.users[rng.randrange(len(self.users))]
                obj = first + rng.randrange(count)
                if (user, obj) not in seen:
                    seen.add((user, obj))
                    rows.append((user, perms[f"view_{name}"], obj))
                    if s % 5 == 0:
                        rows.append((user, perms[f"change_{name}"], obj))
            self.loader.load(user_model, ["user_id", "permission_id", "content_object_id"],
                             chain(rows, self.fixture_rows(user_model)))
            seen, rows = set(), []
            for s in range(how_many // 10):
                group, obj = rng.choice(groups), first + rng.randrange(count)
                if (group, obj) not in seen:
                    seen.add((group, obj))
                    rows.append((group, perms[f"view_{name}"], obj))
            self.loader.load(group_model, ["group_id", "permission_id", "content_object_id"], rows)

    # - the named fixtures -

    def fixture_rows(self, model):
        """The fixture rows of `model`, after its bulk rows. A row whose id is None takes the
        next id once the bulk rows are written (child tables count theirs while loading)."""
        for row in self._fixtures.get(model, ()):
            if row[0] is None:
                row = (self.ids[model],) + row[1:]
                self.ids[model] += 1
            yield row

    def plan_fixtures(self):
        from django.contrib.auth.models import Permission
        from django.contrib.contenttypes.models import ContentType

        from accounts.models import Account
        from activities.models import Activity
        from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone
        from customers.models import (BusinessCustomer, BusinessCustomerUserObjectPermission, CustomerEmail,
                                      CustomerPhone)

        fx = self._fixtures

        def add(model, *row):
            fx.setdefault(model, []).append(row)

        def new_id(model):
            self.next_fixture[model] += 1
            return self.next_fixture[model] - 1

        def users_of(unit, k):
            """A member of `unit` other than its Manager, by number."""
            members = self.unit_users[unit]
            return members[1 + k % (len(members) - 1)]

        rep, manager = self.by_username[BENCH_REP], self.by_username[BENCH_MANAGER]
        dach_rep = self.unit_users["DACH"][2]  # a Sales Representative of DACH, not the bench's
        when = datetime(2024, 3, 1, tzinfo=dt_timezone.utc)
        unit_pk = {name: u.pk for name, u in self.units.items()}

        def account(name, unit, owner):
            pk = new_id(Account)
            add(Account, pk, name, f"https://www.{ascii_slug(name)}.example", "Manufacturing", None, None,
                "Benchmark fixture.", owner, unit_pk[unit], when, when)
            return pk

        def customer(name, acct, unit, owner, phones=1, emails=1):
            pk = new_id(BusinessCustomer)
            slug = ascii_slug(name)
            phone = f"+49 30 {5550000 + pk % 10000}"
            add(BusinessCustomer, pk, name, self.channel_ids[pk % len(self.channel_ids)], acct, owner, unit_pk[unit],
                name, "", None, "", "Manufacturing", 250, f"https://{slug}.example", f"info@{slug}.example", phone,
                "Hauptstrasse 1", "Berlin", "10115", "Berlin", "DE", "", "", "", "", "", None,
                Decimal("125000.00"), "EUR", "Benchmark fixture.", when, when)
            for e in range(emails):
                add(CustomerEmail, None, pk, f"info@{slug}.example" if e == 0 else f"team{e}@{slug}.example",
                    "work" if e == 0 else "billing", e == 0)
            for p in range(phones):
                add(CustomerPhone, None, pk, phone if p == 0 else f"+49 30 {7770000 + p}",
                    "work" if p == 0 else "mobile", p == 0)
            return pk

        def contact(first, last, acct, unit, owner):
            pk = new_id(Contact)
            email = f"{ascii_slug(first)}.{ascii_slug(last)}@fixture.example"
            add(Contact, pk, "", first, "", last, "", "", None, "Head of Purchasing", "Benchmark fixture.", "referral",
                email, "+49 30 5551234", "", owner, None, owner, unit_pk[unit], when, when)
            add(ContactEmail, None, pk, email, True)
            add(ContactPhone, None, pk, "+49 30 5551234", True)
            add(ContactAddress, None, pk, "billing", "Hauptstrasse 1", "Berlin", "10115", "Berlin", "DE", True)
            add(Contact.accounts.through, pk, acct)
            return pk

        # The account with 20 customers, in DACH (the rep's unit) and owned by another rep there;
        # its customers are spread over seven units. The first is the busy customer.
        big = account(BIG_ACCOUNT, "DACH", dach_rep)
        spread = (["DACH"] * 6 + ["Nordics"] * 3 + ["UK & Ireland"] * 2 + ["US East"] * 3 + ["US West"] * 2
                  + ["Japan"] * 2 + [ROOT_UNIT] * 2)
        busy = customer(BUSY_CUSTOMER, big, "DACH", dach_rep, phones=5, emails=2)
        for k, unit in enumerate(spread[1:], start=1):
            # Two carry the common word, so each user's quick search finds some at any size.
            branch = {1: COMMON_WORD, 16: f"Japan {COMMON_WORD}"}.get(k, BRANCHES[k])
            customer(f"{BIG_ACCOUNT} {branch}", big, unit, rep if k == 1 else users_of(unit, k))
        # The busy customer's 10 contacts: 4 in DACH, 3 elsewhere in EMEA, 3 in the Americas.
        types = ["primary", "billing", "logistics", "decision_maker", "other"]
        for k, unit in enumerate(["DACH"] * 4 + ["Nordics", "UK & Ireland", "Nordics", "US East", "US West", "US East"]):
            c = contact(FIRST_NAMES[k * 7], LAST_NAMES[k * 11], big, unit, users_of(unit, k))
            add(ContactCustomerAssignment, None, c, busy, "primary" if k == 0 else types[1 + k % (len(types) - 1)],
                when, when)
        # Its 50 activities, by four users over two years.
        ct = ContentType.objects.get_for_model(BusinessCustomer).pk
        for k in range(50):
            kind = ("call", "email", "note", "task")[k % 4]
            at = when - timedelta(days=15 * k)
            done = kind == "task" and k > 4
            add(Activity, None, kind, SUBJECTS[kind][k % len(SUBJECTS[kind])], SENTENCES[k % len(SENTENCES)],
                "out" if kind == "call" else "", 10 if kind == "call" else None,
                f"info@{ascii_slug(BUSY_CUSTOMER)}.example" if kind == "email" else "",
                (at + timedelta(days=7)).date() if kind == "task" else None, done,
                at + timedelta(days=7) if done else None, at, [dach_rep, rep, manager, users_of("DACH", 3)][k % 4],
                at, at, ct, busy)

        # The rare term: 3 customers, 2 accounts, 3 contacts in DACH, Nordics and Japan; the
        # Japanese customer is shared with the rep.
        group = account(f"{RARE_TERM} Group", "DACH", users_of("DACH", 5))
        pacific = account(f"{RARE_TERM} Pacific", "Japan", users_of("Japan", 5))
        customer(f"{RARE_TERM} Biotech GmbH", group, "DACH", users_of("DACH", 6))
        customer(f"{RARE_TERM} Nordic AB", group, "Nordics", users_of("Nordics", 6))
        shared = customer(f"{RARE_TERM} Pacific K.K.", pacific, "Japan", users_of("Japan", 6))
        contact("Mara", RARE_TERM, group, "DACH", rep)
        contact("Jonas", RARE_TERM, group, "Nordics", users_of("Nordics", 7))
        contact("Aiko", RARE_TERM, pacific, "Japan", users_of("Japan", 7))
        view = Permission.objects.get(content_type__app_label="customers", codename="view_businesscustomer").pk
        add(BusinessCustomerUserObjectPermission, rep, view, shared)

    # - all of it -

    def build(self):
        from crm.models import BusinessUnit

        if BusinessUnit.objects.filter(name__in=[name for name, _ in UNITS]).exists():
            raise ValueError(f"The database already has the benchmark's units ({ROOT_UNIT}, EMEA, ...): "
                             "bench_data builds into a database without them.")
        started = time.perf_counter()
        self.say(f"Building {self.n:,} business customers into {connection.vendor} database "
                 f"{connection.settings_dict['NAME']}:")
        with transaction.atomic():
            self.organization()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # check keys per statement: no trigger events pile up
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self.plan()
            self.plan_fixtures()
            self.contacts()
            self.accounts()
            self.customers()
            self.customer_points()
            self.contact_links()
            self.activities()
            self.shares()
            self.loader.finish()
        if connection.vendor == "postgresql":
            # Statistics for the planner; outside a transaction also VACUUM, which sets the
            # visibility map and hint bits as autovacuum would have in a database in use (else
            # index-only scans cannot work and the first reads rewrite every page).
            t0 = time.perf_counter()
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            with connection.cursor() as cursor:
                cursor.execute(command)
            self.loader.record(command, 0, time.perf_counter() - t0)
        self.seconds = time.perf_counter() - started
        rows = sum(count for _, count, _ in self.loader.timings)
        self.say(f"Built {rows:,} rows in {self.seconds:.1f} s.")
        return self


def build(customers, out=None, seed=1, users_per_unit=USERS_PER_UNIT):
    """Build the benchmark organization with `customers` business customers into the default
    database. Returns the Builder: `.seconds`, `.loader.timings` [(table, rows, seconds)].
    `users_per_unit` below 10 only makes tests quicker (users are the slow part of a small build)."""
    return Builder(customers, out=out, seed=seed, users_per_unit=users_per_unit).build()


# -- the benchmark's import file ---------------------------------------------------------------

# The CSV columns of the import (the customers' CSV without ID: every row is matched by its
# natural key and is new) and the table columns COPY writes for the same rows.
IMPORT_HEADERS = ["Name", "Channel", "Account", "Owner", "Business Unit", "Legal Name", "Tax Number", "Email",
                  "Phone", "Website", "Billing Street", "Billing City", "Billing Postal Code", "Billing Region",
                  "Billing Country", "Shipping Street", "Shipping City", "Shipping Postal Code", "Shipping Region",
                  "Shipping Country", "Lifetime Value", "Currency", "Parent", "Purchase Limit", "Monthly Budget",
                  "Approval Expiry Days"]
IMPORT_FIELDS = ["name", "channel_id", "account_id", "owner_id", "business_unit_id", "legal_name", "tax_number",
                 "primary_email", "primary_phone", "website", "billing_street", "billing_city",
                 "billing_postal_code", "billing_region", "billing_country", "shipping_street", "shipping_city",
                 "shipping_postal_code", "shipping_region", "shipping_country", "lifetime_value", "currency",
                 "parent_id", "purchase_limit", "monthly_budget", "approval_expiry_days"]


class ImportFile:
    """`count` new business customers, three ways: the CSV a user uploads (`csv_bytes()`),
    the same rows as table values for COPY (`table_rows`, IMPORT_FIELDS plus created_at and
    updated_at) and as a stock django-import-export dataset (`stock_dataset()`: model field
    names, related records by id, as a plain ModelResource reads them)."""

    def __init__(self, headers, rows, table_rows):
        self.headers, self.rows, self.table_rows = headers, rows, table_rows

    def __len__(self):
        return len(self.rows)

    def head(self, count):
        return ImportFile(self.headers, self.rows[:count], self.table_rows[:count])

    def csv_bytes(self):
        import csv
        import io

        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(self.headers)
        writer.writerows(self.rows)
        return text.getvalue().encode()

    def stock_dataset(self):
        import tablib

        names = [f[:-3] if f.endswith("_id") else f for f in IMPORT_FIELDS]
        cells = [["" if v is None else v for v in row[: len(names)]] for row in self.table_rows]
        return tablib.Dataset(*cells, headers=names)


def import_file(count):
    """The benchmark's import: `count` new customers built from the data in the database.

    Row r copies a customer spread over the table (channel, account, owner, unit, tax
    number, addresses, lifetime value) under a name no customer has: the word lists' account
    name number (accounts in the database + r) with the legal form of its country, and its
    own email, phone and website. A customer of the inactive channel moves to an active one
    (new customers need one); one row in twenty names the copied customer as its parent, one
    in four has a purchase limit and a monthly budget."""
    from channels.models import Channel
    from django.db.models.functions import Mod
    from django.utils import timezone

    from accounts.models import Account
    from customers.models import BusinessCustomer

    active = dict(Channel.objects.filter(status="active").values_list("pk", "name"))
    fallback = min(active)
    total = BusinessCustomer.objects.count()
    stride = max(1, total // count)
    fields = ["pk", "name", "channel_id", "account_id", "account__name", "owner_id", "owner__username",
              "business_unit_id", "business_unit__name", "tax_number", "billing_street", "billing_city",
              "billing_postal_code", "billing_region", "billing_country", "shipping_street", "shipping_city",
              "shipping_postal_code", "shipping_region", "shipping_country", "lifetime_value", "currency"]
    sources = list(BusinessCustomer.objects.alias(m=Mod("id", stride)).filter(m=0).order_by("pk")
                   .values_list(*fields)[:count])
    if not sources:
        raise ValueError("The database has no customers to build an import from.")
    names = Names()
    first_name = Account.objects.count()
    now = timezone.now()
    rows, table_rows = [], []
    for r in range(count):
        (pk, source_name, channel, account, account_name, owner, username, unit, unit_name, tax, b_street, b_city,
         b_postal, b_region, b_country, s_street, s_city, s_postal, s_region, s_country, value,
         currency) = sources[r % len(sources)]
        h = mix(r, 50)
        country = str(b_country) or "DE"
        name = f"{names.account(first_name + r)} {LEGAL_FORMS.get(country, 'Ltd')}"
        slug = ascii_slug(name)
        domain = Builder.domain(slug, country)
        email = f"{EMAIL_LOCALS[h % len(EMAIL_LOCALS)]}@{domain}"
        prefix = next((p for c, _, p in CITIES.get(country, ()) if c == b_city), "+49 30")
        phone = f"{prefix} {h % 9_000_000 + 1_000_000}"
        parent = None
        if channel not in active:
            channel = fallback
        elif h % 20 == 0:
            parent = (pk, source_name)
        limit = Decimal((h >> 8) % 500 + 1) * 100 if h % 4 == 0 else None
        budget = limit * 4 if limit is not None else None
        days = (14, 30)[(h >> 4) % 2] if h % 10 == 0 else None
        legal = name
        table_rows.append((name, channel, account, owner, unit, legal, tax, email, phone, f"https://{domain}",
                           b_street, b_city, b_postal, b_region, str(b_country), s_street, s_city, s_postal,
                           s_region, str(s_country), value, currency, parent[0] if parent else None, limit, budget,
                           days or 7, now, now))
        rows.append([name, active[channel], account_name, username, unit_name, legal, tax, email, phone,
                     f"https://{domain}", b_street, b_city, b_postal, b_region, str(b_country), s_street, s_city,
                     s_postal, s_region, str(s_country), f"{value:.2f}", currency, parent[1] if parent else "",
                     f"{limit:.2f}" if limit is not None else "", f"{budget:.2f}" if budget is not None else "",
                     str(days) if days else ""])
    return ImportFile(list(IMPORT_HEADERS), rows, table_rows)
