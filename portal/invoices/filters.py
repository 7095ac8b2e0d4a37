"""The invoice list's search, filters, sort order and page, read from and written to URLs.

One object both parses the query string (forgivingly: a bad value is dropped and
reported, never a 500) and writes it back, so the pager, the sort links and the
htmx requests all carry the same state and every page can be bookmarked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from portal.models import DocumentKind, InvoiceStatus

SORTS = ("issued", "due", "amount")
MAX_SEARCH = 64


@dataclass(frozen=True)
class InvoiceFilters:
    """What the customer asked the list to show."""

    search: str = ""
    status: InvoiceStatus | None = None
    kind: DocumentKind | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    overdue: bool = False
    sort: str = "issued"
    descending: bool = True
    page: int = 1
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> InvoiceFilters:
        """Parse the query string; unusable values are left out and named in ``problems``."""
        problems: list[str] = []
        status_value = args.get("status") or ""
        kind_value = args.get("kind") or ""
        sort = args.get("sort") or "issued"
        page = args.get("page", 1, type=int) or 1
        return cls(
            search=(args.get("q") or "").strip()[:MAX_SEARCH],
            status=InvoiceStatus(status_value) if status_value in set(InvoiceStatus) else None,
            kind=DocumentKind(kind_value) if kind_value in set(DocumentKind) else None,
            issued_from=_date(args.get("from"), _("Issued from"), problems),
            issued_to=_date(args.get("to"), _("Issued until"), problems),
            overdue=args.get("overdue") in ("1", "on", "true"),
            sort=sort if sort in SORTS else "issued",
            descending=args.get("dir", "desc") != "asc",
            page=max(page, 1),
            problems=tuple(problems),
        )

    @property
    def active(self) -> bool:
        """True when anything narrows the list."""
        return bool(self.search or self.status or self.kind or self.issued_from
                    or self.issued_to or self.overdue)

    def as_args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for these filters (with ``changes``), defaults left out."""
        current = replace(self, **changes) if changes else self
        args = {
            "q": current.search,
            "status": current.status.value if current.status else "",
            "kind": current.kind.value if current.kind else "",
            "from": current.issued_from.isoformat() if current.issued_from else "",
            "to": current.issued_to.isoformat() if current.issued_to else "",
            "overdue": "1" if current.overdue else "",
            "sort": "" if current.sort == "issued" else current.sort,
            "dir": "" if current.descending else "asc",
            "page": str(current.page) if current.page > 1 else "",
        }
        return {key: value for key, value in args.items() if value}

    def sorted_by(self, sort: str) -> dict[str, str]:
        """Arguments for sorting by ``sort``: the same column again flips the direction."""
        descending = not self.descending if sort == self.sort else True
        return self.as_args(sort=sort, descending=descending, page=1)


def _date(value: str | None, label: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(_("%(field)s: enter a date like 2026-11-03.", field=label))
        return None
