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


def parent_refusal(pk, parent_id, parents=None, heights=None):
    """Why `pk` (None: a new customer) may not have `parent_id` as parent, or None.
    `parents` ({id: parent id}) overrides the database for customers of the same import
    file, so a cycle or a too-deep tree across its rows is caught before anything is written.
    `heights` ({id: levels below it}, from subtree_heights) spares the query for `pk`'s
    subsidiaries, so an import checks a whole batch in a fixed number of queries; its keys
    may also be an import's stand-ins for new rows, which the database never sees."""
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
    if heights is not None:
        height = heights.get(pk, 0)
    elif pk is not None:
        rows = descendant_rows(pk)
        height = max((depth for _, _, depth in rows), default=0)
    levels = len(chain) + 1 + height
    if levels > limit:
        return f"The subsidiary tree would be {levels} levels deep; at most {limit} are allowed."
    return None


def _walk_many(sql, pks):
    if not pks:
        return []
    table = connection.ops.quote_name(BusinessCustomer._meta.db_table)
    rows = []
    pks = sorted(set(pks))
    for i in range(0, len(pks), 500):  # SQLite caps the number of query parameters
        chunk = pks[i : i + 500]
        marks = ", ".join(["%s"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(sql.format(table=table, marks=marks), [*chunk, settings.CRM_MAX_TREE_DEPTH + 1])
            rows += cursor.fetchall()
    return rows


def ancestor_map(pks):
    """{id: parent id} of `pks` and all their ancestors (roots map to None): one walk up
    from many nodes, for parent_refusal's `parents` over a whole import batch."""
    rows = _walk_many("""
        WITH RECURSIVE up(id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM {table} WHERE id IN ({marks})
            UNION ALL
            SELECT c.id, c.parent_id, up.depth + 1 FROM {table} c JOIN up ON c.id = up.parent_id
            WHERE up.depth < %s
        ) SELECT DISTINCT id, parent_id FROM up""", pks)
    return dict(rows)


def subtree_heights(pks):
    """{id: levels of subsidiaries below it} for `pks` (0 without subsidiaries): one walk down."""
    rows = _walk_many("""
        WITH RECURSIVE down(start, id, depth) AS (
            SELECT id, id, 0 FROM {table} WHERE id IN ({marks})
            UNION ALL
            SELECT down.start, c.id, down.depth + 1 FROM {table} c JOIN down ON c.parent_id = down.id
            WHERE down.depth < %s
        ) SELECT start, MAX(depth) FROM down GROUP BY start""", pks)
    return dict(rows)


def tree_section(customer, user):
    """The record page's company structure: the customer's ancestors and subsidiaries as
    indented nodes, named and linked only where the user may view them. The two walks plus
    one restricted query for the names, whatever the size of the tree."""
    from crm.access import restrict

    ancestors = ancestor_ids(customer.pk)[::-1]  # root first
    below = descendant_rows(customer.pk)
    ids = ancestors + [row[0] for row in below]
    visible = {pk: name for pk, name in restrict(BusinessCustomer.objects.filter(pk__in=ids), user, "view")
               .values_list("pk", "name")} if ids else {}

    def node(pk, level, current=False):
        name = customer.name if current else visible.get(pk)
        return {"pk": pk, "name": name, "level": level, "current": current, "hidden": name is None}

    nodes = [node(pk, level) for level, pk in enumerate(ancestors)]
    nodes.append(node(customer.pk, len(ancestors), current=True))
    children = {}
    for pk, parent_id, depth in below:
        children.setdefault(parent_id, []).append(pk)
    # Depth first, named siblings by name, hidden ones after them (they have no name to sort by).
    stack = [(pk, len(ancestors) + 1) for pk in _siblings(children.get(customer.pk, []), visible)][::-1]
    shown = []
    while stack and len(shown) < TREE_SHOWN:
        pk, level = stack.pop()
        shown.append(node(pk, level))
        stack.extend((c, level + 1) for c in _siblings(children.get(pk, []), visible)[::-1])
    return {"tree_nodes": nodes + shown, "tree_more": len(below) - len(shown),
            "tree_parent": nodes[-2] if ancestors else None, "tree_subsidiaries": len(below)}


TREE_SHOWN = 200  # subsidiaries listed on the record page


def _siblings(pks, visible):
    return sorted(pks, key=lambda pk: (pk not in visible, (visible.get(pk) or "").lower(), pk))
