"""Insert many records with one statement per table and no model instances.

``bulk_create`` spends about 100 microseconds of CPU per delivery and its
recipient (a model instance, then every field prepared), and bulk sending's
coordinating thread is the ceiling of its throughput. Here each row is a plain
tuple of values the driver takes as they are (the caller adapts what needs it,
such as a datetime, once: :func:`db_value`), and the deliveries' keys come
back from ``INSERT ... RETURNING`` on the databases where Django trusts that
(PostgreSQL, SQLite 3.35+, MariaDB 10.5+); elsewhere :func:`insert_rows`
returns None and the caller uses the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Model


def db_value(model: type[Model], name: str, value: Any, using: str = "default") -> Any:
    """``value`` as the database stores field ``name`` (adapt once, reuse)."""
    field: Any = model._meta.get_field(name)
    return field.get_db_prep_save(value, connections[using])


def insert_rows(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: bool,
    using: str = "default",
) -> list[int] | None:
    """INSERT ``rows`` (values in the order of field ``names``, ready for the
    driver: str, int, bytes, None, or :func:`db_value`'s result); return the
    new primary keys in order when ``returning``, else ``[]``. None when this
    database cannot return them (then nothing was written)."""
    connection = connections[using]
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        return None
    opts = model._meta
    fields = [opts.get_field(name) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    one_row = "(" + ", ".join("%s" for _ in fields) + ")"
    # The backend's own limit (SQLite: 999 or 32766 parameters), and never
    # more than 65535 parameters in one statement (PostgreSQL's protocol).
    batch = connection.ops.bulk_batch_size(fields, rows) or len(rows)
    batch = max(1, min(batch, 65535 // len(fields)))
    pk = quote(opts.pk.column)
    keys: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            params: list[Any] = []
            for row in chunk:
                params.extend(row)
            sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES " + ", ".join(
                [one_row] * len(chunk)
            )
            if returning:
                cursor.execute(f"{sql} RETURNING {pk}", params)
                keys.extend(row[0] for row in cursor.fetchall())
            else:
                cursor.execute(sql, params)
    return keys
