"""A thin, path-aware view of an lxml tree for the UBL reader.

Every value read through :class:`Node` knows its XPath-like location, so a
bad value raises :class:`~einvoice.errors.UblReadError` that points at it,
e.g. ``/Invoice/cac:InvoiceLine[3]/cbc:InvoicedQuantity``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from lxml import etree

from einvoice.errors import UblReadError
from einvoice.ubl.namespaces import PREFIXES

_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _clark(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{PREFIXES[prefix]}}}{local}"


class Node:
    """An element and its location; child names are ``"cac:Name"`` / ``"cbc:Name"`` paths."""

    __slots__ = ("element", "path")

    def __init__(self, element: etree._Element, path: str) -> None:
        self.element = element
        self.path = path

    def children(self, name: str) -> list[Node]:
        """All children called ``name`` (one step, e.g. ``"cac:InvoiceLine"``)."""
        found = self.element.findall(_clark(name))
        if len(found) == 1:
            return [Node(found[0], f"{self.path}/{name}")]
        return [
            Node(element, f"{self.path}/{name}[{index}]") for index, element in enumerate(found, 1)
        ]

    def find(self, path: str) -> Node | None:
        """The first element at ``path`` (steps separated by ``/``), or None."""
        node: Node | None = self
        for step in path.split("/"):
            assert node is not None
            found = node.children(step)
            if not found:
                return None
            node = found[0]
        return node

    def location(self, path: str) -> str:
        """The location ``path`` would have below this node."""
        return f"{self.path}/{path}"

    def require(self, path: str, field: str, what: str) -> Node:
        """The element at ``path``; raise UblReadError naming ``what`` when it is missing."""
        node = self.find(path)
        if node is None:
            raise UblReadError(self.location(path), field, f"missing mandatory element: {what}")
        return node

    def text(self, path: str) -> str | None:
        """Stripped text at ``path``; None when the element is missing or empty."""
        node = self.find(path)
        if node is None:
            return None
        value = (node.element.text or "").strip()
        return value or None

    def required_text(self, path: str, field: str, what: str) -> str:
        """Stripped non-empty text at ``path``, else UblReadError."""
        node = self.require(path, field, what)
        value = (node.element.text or "").strip()
        if not value:
            raise UblReadError(node.path, field, f"empty mandatory element: {what}")
        return value

    def attr(self, path: str, name: str) -> str | None:
        """Attribute ``name`` of the element at ``path`` (stripped), or None."""
        node = self.find(path)
        if node is None:
            return None
        value = (node.element.get(name) or "").strip()
        return value or None

    def decimal(self, path: str, field: str, required: str | None = None) -> Decimal | None:
        """Decimal at ``path``; None if absent, unless ``required`` names it (then UblReadError)."""
        node = self.find(path)
        if node is None:
            if required:
                raise UblReadError(
                    self.location(path), field, f"missing mandatory element: {required}"
                )
            return None
        raw = (node.element.text or "").strip()
        if not _DECIMAL.match(raw):
            raise UblReadError(node.path, field, f"not a number: {raw!r}")
        return Decimal(raw)

    def date(self, path: str, field: str, required: str | None = None) -> date | None:
        """ISO date at ``path``; None if absent, unless ``required`` names it (UblReadError)."""
        node = self.find(path)
        if node is None:
            if required:
                raise UblReadError(
                    self.location(path), field, f"missing mandatory element: {required}"
                )
            return None
        raw = (node.element.text or "").strip()
        try:
            if not _DATE.match(raw):
                raise ValueError
            return date.fromisoformat(raw)
        except ValueError:
            raise UblReadError(node.path, field, f"not a date (YYYY-MM-DD): {raw!r}") from None

    def boolean(self, path: str, field: str, required: str) -> bool:
        """``true``/``false`` at ``path``; UblReadError when missing or anything else."""
        node = self.require(path, field, required)
        raw = (node.element.text or "").strip()
        if raw not in ("true", "false"):
            raise UblReadError(node.path, field, f"not a boolean (true/false): {raw!r}")
        return raw == "true"
