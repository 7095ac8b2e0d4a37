"""The portal's declarative base; the column types come from ``distribution.sqltypes``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from distribution.sqltypes import (
    NAMING_CONVENTION,
    ExactDecimal,
    Money,
    Quantity,
    Rate,
    UTCDateTime,
    enum_column,
    utcnow,
)

__all__ = [
    "Base",
    "ExactDecimal",
    "Money",
    "Quantity",
    "Rate",
    "UTCDateTime",
    "enum_column",
    "utcnow",
]


class Base(DeclarativeBase):
    """Base class of the portal's records (one MetaData for the portal package)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
