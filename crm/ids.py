"""Record ids from request values, checked before they reach SQL.

A value from a query string or a form is an id only when it is plain ASCII digits within
the range of a 64-bit primary key. `str.isdigit()` is not enough: it accepts superscript
and other Unicode digits that `int()` then refuses or the database cannot compare, and an
integer beyond the column's range makes SQLite raise OverflowError and PostgreSQL a
DataError, both a 500. More than 19 digits is never an id, and checking the length first
also keeps a 10,000-digit value away from `int()` (which refuses over 4,300 digits).
"""
import re

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def as_id(value):
    """`value` as a record id (an int in 0..MAX_ID), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def parse_ids(values):
    """The distinct ids among `values`, sorted; whatever is not an id is left out."""
    return sorted({number for number in map(as_id, values) if number is not None})
