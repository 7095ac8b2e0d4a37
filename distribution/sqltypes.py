"""Column types shared by Herald's packages; this module imports nothing of ours.

Money and quantities are ``Decimal`` end to end. PostgreSQL stores them in
NUMERIC columns; SQLite has no exact decimal type (its NUMERIC affinity turns
text into binary floats), so there they are stored as canonical text.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

# Named constraints make Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (stored as such)."""
    return datetime.now(UTC)


class ExactDecimal(sa.types.TypeDecorator):
    """A fixed-scale decimal stored exactly: NUMERIC on PostgreSQL, text on SQLite.

    Values with more decimals than ``scale`` are refused rather than rounded, so
    nothing is silently changed on the way into the database; importers check
    the scale first and report the field.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(self.precision + 2))
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money and quantities must be Decimal, not float")
            value = Decimal(value)
        quantized = value.quantize(self._quantum)
        if quantized != value:
            raise ValueError(f"{value} has more than {self.scale} decimals")
        if len(quantized.as_tuple().digits) > self.precision:
            raise ValueError(f"{value} has more than {self.precision} digits")
        return str(quantized) if dialect.name == "sqlite" else quantized

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return Decimal(value).quantize(self._quantum)
        except InvalidOperation as exc:  # pragma: no cover - only a hand-edited database
            raise ValueError(f"stored decimal {value!r} is not a number") from exc

    def copy(self, **kw):
        return ExactDecimal(self.precision, self.scale)

    def __repr__(self) -> str:
        return f"ExactDecimal({self.precision}, {self.scale})"


def Money() -> ExactDecimal:
    """An amount in a currency: up to 16 digits before and 2 after the point."""
    return ExactDecimal(18, 2)


def Quantity() -> ExactDecimal:
    """A quantity or price: up to 6 decimals (EN 16931 allows unit prices below a cent)."""
    return ExactDecimal(20, 6)


def Rate() -> ExactDecimal:
    """A percentage such as a VAT rate: 0.00 to 999.99."""
    return ExactDecimal(5, 2)


def enum_column(enum_class: type[enum.StrEnum], length: int = 32) -> sa.Enum:
    """A ``StrEnum`` stored as its value in a VARCHAR with a CHECK constraint."""
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
        name=enum_class.__name__.lower(),
    )


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware timestamp; SQLite returns naive values, so they are marked UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
