"""The subsidiary tree of business customers, walked by recursive CTEs from one node.

django-tree-queries was the first choice, but its CTE starts from every root and ranks the
whole table before it filters: at a million customers each record page would walk them
all. These two queries start at the node and follow the `parent_id` index up or down, so
they cost the size of the tree, not of the table, and stop at a depth bound (which also
ends a walk should a cycle ever reach the database). No denormalised column to repair.
"""
from django.conf import settings
from django.db import connection

from .models import BusinessCustomer


def _walk(sql, pk):
    table = connection.ops.quote_name(BusinessCustomer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), [pk, settings.CRM_MAX_TREE_DEPTH + 1])
        return cursor.fetchall()


def ancestor_ids(pk):
    """Ids from `pk`'s parent up to its root, nearest first."""
    rows = _walk("""
        WITH RECURSIVE up(id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM {table} WHERE id = %s
            UNION ALL
            SELECT c.id, c.parent_id, up.depth + 1 FROM {table} c JOIN up ON c.id = up.parent_id
            WHERE up.depth < %s
        ) SELECT id, depth FROM up WHERE depth > 0 ORDER BY depth""", pk)
    return [row[0] for row in rows]


def descendant_rows(pk):
    """[(id, parent id, depth)] of `pk`'s subsidiaries at any depth (children at depth 1)."""
    return _walk("""
        WITH RECURSIVE down(id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM {table} WHERE id = %s
            UNION ALL
            SELECT c.id, c.parent_id, down.depth + 1 FROM {table} c JOIN down ON c.parent_id = down.id
            WHERE down.depth < %s
        ) SELECT id, parent_id, depth FROM down WHERE depth > 0 ORDER BY depth, id""", pk)


def tree_ids(pk):
    """Every id of the tree `pk` belongs to: its root and all the root's descendants."""
    ancestors = ancestor_ids(pk)
    root = ancestors[-1] if ancestors else pk
    return [root] + [row[0] for row in descendant_rows(root)]


def parent_refusal(pk, parent_id, parents=None):
    """Why `pk` (None: a new customer) may not have `parent_id` as parent, or None.
    `parents` ({id: parent id}) overrides the database for customers of the same import
    file, so a cycle or a too-deep tree across its rows is caught before anything is written."""
    if parent_id is None:
        return None
    limit = settings.CRM_MAX_TREE_DEPTH
    parents = parents or {}
    chain, node = [], parent_id
    while node is not None and len(chain) <= limit:
        if node == pk:
            return "A customer cannot be its own parent or the parent of one of its parents (that would be a cycle)."
        chain.append(node)
        if node in parents:
            node = parents[node]
        else:
            ups = ancestor_ids(node)
            for up in ups:
                if up == pk:
                    return ("A customer cannot be its own parent or the parent of one of its parents "
                            "(that would be a cycle).")
            chain.extend(ups)
            break
    height = 0
    if pk is not None:
        rows = descendant_rows(pk)
        height = max((depth for _, _, depth in rows), default=0)
    levels = len(chain) + 1 + height
    if levels > limit:
        return f"The subsidiary tree would be {levels} levels deep; at most {limit} are allowed."
    return None
