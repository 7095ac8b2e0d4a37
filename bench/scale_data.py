"""Data for the scale test: the demo's customers and invoices, multiplied inside PostgreSQL.

The demo seeds a realistic template (200 customers over five months: businesses and
households, mixed VAT, payments, credit notes, preferences across the five channels,
stored UBL documents) through the product's own import. The scale test needs a
thousand times that, which the import would take hours to make; so the template's
rows are copied ``factor - 1`` more times with ``INSERT ... SELECT`` over
``generate_series``: copy ``g`` of a row gets ``id + g * stride`` (the stride is above
every id of the table, so ids never collide and foreign keys follow by the same
rule), and the columns that must be unique get ``-g`` appended. Copies share the
template's stored documents (documents are stored by SHA-256), and no events are
copied: the chain holds what the product itself recorded, and the run planned over
the copies records its own events as usual.
"""

from __future__ import annotations

import sqlalchemy as sa

# Copied in this order (parents first). Each entry: table, the unique text columns
# that get the copy's suffix, and special column expressions (``{g}`` is the copy).
PORTAL_TABLES: list[tuple[str, set[str], dict[str, str]]] = [
    ("customers", {"number"}, {}),
    ("contacts", set(), {}),
    ("accounts", {"number"}, {}),
    ("invoices", {"number"}, {}),
    ("invoice_lines", set(), {}),
    ("invoice_allowance_charges", set(), {}),
    ("line_allowance_charges", set(), {}),
    ("payments", {"provider_reference"}, {}),
]
DISTRIBUTION_TABLES: list[tuple[str, set[str], dict[str, str]]] = [
    ("recipients", set(), {"recipient_key": "'customer:' || (split_part(recipient_key, ':', 2)"
                                            "::bigint + {g} * {stride_customers})"}),
    ("addresses", set(), {}),
    ("preferences", set(), {}),
]


def multiply(connection: sa.Connection, factor: int) -> dict[str, int]:
    """Copy every template row ``factor - 1`` times; returns the row count of each table."""
    strides = {table: _stride(connection, table)
               for table, _, _ in PORTAL_TABLES + DISTRIBUTION_TABLES}
    only_customer_recipients = "starts_with(recipient_key, 'customer:')"
    for table, unique, special in PORTAL_TABLES + DISTRIBUTION_TABLES:
        inspector = sa.inspect(connection)
        columns = [c["name"] for c in inspector.get_columns(table)]
        references = {key["constrained_columns"][0]: key["referred_table"]
                      for key in inspector.get_foreign_keys(table)}
        chosen = []
        for column in columns:
            if column in special:
                chosen.append(special[column].format(
                    g="g", stride_customers=strides["customers"]))
            elif column == "id":
                chosen.append(f"id + g * {strides[table]}")
            elif references.get(column) in strides:  # a copied parent: follow its copy
                chosen.append(f"{column} + g * {strides[references[column]]}")
            elif column in unique:
                chosen.append(f"{column} || '-' || g")
            else:
                chosen.append(column)
        where = ""
        if table == "recipients":
            where = f"WHERE {only_customer_recipients}"
        elif table in {"addresses", "preferences"}:
            where = (f"WHERE recipient_id IN (SELECT id FROM recipients "
                     f"WHERE {only_customer_recipients})")
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(chosen)} FROM (SELECT * FROM {table} {where}) AS template "
            f"CROSS JOIN generate_series(1, {factor - 1}) AS g")
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT max(id) FROM {table}))")
    counts = {}
    for table, _, _ in PORTAL_TABLES + DISTRIBUTION_TABLES:
        connection.exec_driver_sql(f"ANALYZE {table}")
        counts[table] = connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    return counts


def _stride(connection: sa.Connection, table: str) -> int:
    """A round number above every id in the table: copy g's ids start at g * stride."""
    highest = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one()
    stride = 10
    while stride <= highest:
        stride *= 10
    return stride
