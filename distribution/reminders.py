"""Reminder policy: when an unpaid document is reminded, in which tone, at what fee.

Pure policy, no database and no portal: the caller (``portal.reminders``)
passes in the due date, today, the stages already sent and what it knows about
the invoice (paid, disputed, void, fully credited), and gets back what is due
now. Stages are offsets in days from the due date (negative: before it), each
with a tone from 1 (a friendly note) to 4 (the final notice) that picks the
wording in :mod:`distribution.templates`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_TONE = 4


class PolicyError(ValueError):
    """A reminder policy that cannot work; the message names what to change."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One reminder: ``offset_days`` from the due date, its tone, fee and PDF."""

    offset_days: int
    tone: int
    # Charged in the document's currency, only once the due date has passed.
    fee: Decimal | None = None
    # Attach a PDF of the invoice stating the fees (rendered per reminder: ~150 ms).
    with_pdf: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The stage as JSON-ready values (the fee as a string: it is money)."""
        data: dict[str, Any] = {"offset_days": self.offset_days, "tone": self.tone}
        if self.fee is not None:
            data["fee"] = str(self.fee)
        if self.with_pdf:
            data["with_pdf"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stage:
        """A stage from :meth:`to_dict`'s shape; raises PolicyError on bad values."""
        unknown = set(data) - {"offset_days", "tone", "fee", "with_pdf"}
        if unknown:
            raise PolicyError(f"unknown stage field(s): {', '.join(sorted(unknown))}")
        try:
            fee = data.get("fee")
            return cls(offset_days=int(data["offset_days"]), tone=int(data["tone"]),
                       fee=Decimal(str(fee)) if fee not in (None, "") else None,
                       with_pdf=bool(data.get("with_pdf", False)))
        except KeyError as exc:
            raise PolicyError(f"a stage needs {exc.args[0]}") from exc
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise PolicyError(f"a stage has a bad value: {dict(data)!r}") from exc


# Three days before, on the day, a week after (free: Belgian consumer law allows no fee on
# the first reminder), and a final notice three weeks after with a €7.50-style fee (the
# Belgian ceiling for later reminders to consumers) and a PDF that states it.
DEFAULT_STAGES = (
    Stage(-3, 1),
    Stage(0, 2),
    Stage(7, 3),
    Stage(21, 4, fee=Decimal("7.50"), with_pdf=True),
)


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """Which reminders go out, relative to each invoice's due date."""

    stages: tuple[Stage, ...] = DEFAULT_STAGES
    # Days the final notice gives to pay before what happens next (0: no date stated).
    final_notice_days: int = 14

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse a policy that could not be followed, naming the problem."""
        if not self.stages:
            raise PolicyError("a reminder policy needs at least one stage")
        offsets = [stage.offset_days for stage in self.stages]
        if offsets != sorted(set(offsets)):
            raise PolicyError("stage offsets must be distinct and in ascending order")
        tones = [stage.tone for stage in self.stages]
        if any(not 1 <= tone <= MAX_TONE for tone in tones):
            raise PolicyError(f"tones run from 1 (friendly) to {MAX_TONE} (final notice)")
        if tones != sorted(tones):
            raise PolicyError("the tone may only escalate from one stage to the next")
        for stage in self.stages:
            if stage.fee is not None and stage.offset_days <= 0:
                raise PolicyError(f"the stage at {stage.offset_days} days has a fee; fees "
                                  "apply only after the due date")
            if stage.fee is not None and stage.fee < 0:
                raise PolicyError("a fee cannot be negative")
        if self.final_notice_days < 0:
            raise PolicyError("final_notice_days cannot be negative")

    def stage_at(self, offset_days: int) -> Stage:
        """The stage with this offset; KeyError when the policy has none."""
        for stage in self.stages:
            if stage.offset_days == offset_days:
                return stage
        raise KeyError(offset_days)

    def fees_for(self, sent_offsets: Iterable[int]) -> Decimal:
        """The fees of the stages actually sent (a skipped stage costs nothing)."""
        sent = set(sent_offsets)
        return sum((stage.fee for stage in self.stages
                    if stage.fee is not None and stage.offset_days in sent), Decimal("0"))

    def to_json(self) -> str:
        """The policy as JSON text, to store or configure."""
        return json.dumps({"stages": [stage.to_dict() for stage in self.stages],
                           "final_notice_days": self.final_notice_days})

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> ReminderPolicy:
        """A policy from :meth:`to_json`'s text (or the parsed dict); raises PolicyError."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise PolicyError(f"the reminder policy is not JSON: {exc}") from exc
        if not isinstance(data, Mapping) or not isinstance(data.get("stages"), list):
            raise PolicyError('a reminder policy is an object with a "stages" list')
        stages = tuple(Stage.from_dict(stage) for stage in data["stages"])
        return cls(stages=stages, final_notice_days=int(data.get("final_notice_days", 14)))


@dataclass(frozen=True, slots=True)
class Standing:
    """What the caller knows about the invoice now; any of these stops every reminder."""

    paid: bool = False
    disputed: bool = False
    void: bool = False
    fully_credited: bool = False

    @property
    def stop_reason(self) -> str | None:
        """Why no reminder may go out (e.g. "paid"), or None when reminders may."""
        reasons = [name.replace("_", " ") for name in ("paid", "disputed", "void",
                                                        "fully_credited") if getattr(self, name)]
        return ", ".join(reasons) or None


def due_stages(policy: ReminderPolicy, due_date: date, today: date,
               already_sent_stages: Iterable[int], *,
               standing: Standing | None = None) -> list[Stage]:
    """The reminder due today: at most one stage, the latest one reached.

    When several stages were missed (the run did not happen, the invoice was
    issued late) only the latest reached is sent, never a burst of stale ones;
    nothing is sent when that stage, or a later one, already went out, or when
    ``standing`` says the invoice is paid, disputed, void or fully credited.
    ``already_sent_stages`` holds offsets in days.
    """
    if standing is not None and standing.stop_reason:
        return []
    days = (today - due_date).days
    reached = [stage for stage in policy.stages if stage.offset_days <= days]
    if not reached:
        return []
    latest = reached[-1]
    sent = set(already_sent_stages)
    if any(offset >= latest.offset_days for offset in sent):
        return []
    return [latest]
