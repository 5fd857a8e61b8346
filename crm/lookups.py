"""`field__ilike=term`: case-insensitive "contains" that PostgreSQL trigram indexes serve.

Django's icontains compiles to UPPER(col::text) LIKE UPPER(...) on PostgreSQL, which a
plain gin_trgm_ops index on the column cannot answer; ILIKE can. Elsewhere it is icontains.
"""
from django.db import models
from django.db.models.lookups import IContains


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
