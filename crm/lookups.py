"""Lookups Django lacks.

`field__ilike=term`: case-insensitive "contains" that PostgreSQL trigram indexes serve.
Django's icontains compiles to UPPER(col::text) LIKE UPPER(...) on PostgreSQL, which a
plain gin_trgm_ops index on the column cannot answer; ILIKE can. Elsewhere it is icontains.

`field__any=values`: `__in` for the long lists of an import batch (crm.resources). On
PostgreSQL one array parameter, `= ANY(%s::bigint[])`, the same plan as IN: an IN list of
thousands of placeholders makes a query too long for psycopg's statement cache, so each
one was parsed again and its values adapted one by one (a seventh of an import's time).
"""
from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models.lookups import IContains, In

INTEGER_TYPES = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                 "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField"}
TEXT_TYPES = {"CharField", "TextField", "EmailField", "SlugField", "URLField"}


@models.CharField.register_lookup
@models.TextField.register_lookup
class ILike(IContains):
    lookup_name = "ilike"

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", lhs_params + rhs_params

    def get_rhs_op(self, connection, rhs):
        return connection.operators["icontains"] % rhs


def array_type(field):
    """The SQL array element type `field`'s values go to PostgreSQL as, or None."""
    while field.is_relation and getattr(field, "target_field", None) is not None:
        field = field.target_field
    kind = field.get_internal_type()
    return "bigint" if kind in INTEGER_TYPES else "text" if kind in TEXT_TYPES else None


def array_literal(values, kind):
    """PostgreSQL's text form of an array of `values` (one string for psycopg to quote: its
    list adapter takes a Python call per element)."""
    if kind == "bigint":
        return "{" + ",".join(str(int(v)) for v in values) + "}"
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


@models.Field.register_lookup
@models.ForeignObject.register_lookup  # a relation's lookups are its own, not Field's
class Any(In):
    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        kind = array_type(self.lhs.output_field)
        if kind is None or not self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        values = {value for value in self.rhs if value is not None}
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{kind}[])", (*lhs_params, array_literal(values, kind))


def trigram_indexes(*columns):
    """Migration operation: trigram GIN indexes on (table, column) pairs, PostgreSQL only."""
    from django.db import migrations

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column in columns:
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{table}_{column}_trgm" ON "{table}" USING gin ("{column}" gin_trgm_ops)'
            )

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in columns:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{table}_{column}_trgm"')

    return migrations.RunPython(forwards, backwards, elidable=False)
