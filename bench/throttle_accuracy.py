"""Benchmark: does a wave set to 50 per second release 3,000 a minute, and only in its window?

Real dispatcher code (:func:`distribution.dispatcher.tick`) on a real database,
with a simulated clock (``distribution.dispatcher.utcnow`` replaced, advanced one
second per tick) and an enqueue that does nothing. A wave of
``--recipients`` × 5 invoice messages to customers in Brussels (send window
open: Monday 12:00 local) and a tenth as many in Tokyo (20:00 local, window
closed) ticks for ``--minutes`` simulated minutes; releases are counted per
simulated minute (the tokens a tick spends were earned in the second before it).
Then the clock jumps to 20:00 in Brussels, when the window has closed for
everyone, and ticks one more minute, in which nothing may be released.

Run from the repository root::

    .venv/bin/python bench/throttle_accuracy.py            # PostgreSQL, own schema
    .venv/bin/python bench/throttle_accuracy.py --sqlite   # a temporary SQLite file

Goal (issue 4): every minute within 2% of 3,000, nothing released outside the
window. Prints ``BENCH <name> <value> <unit>`` lines.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plan_run import DEFAULT_URL, own_schema  # bench/ is on sys.path when run as a script

from distribution import dispatcher
from distribution.channels.base import ChannelName
from distribution.deliveries import Delivery, DeliveryState, Message
from distribution.preferences import Preference, ensure_message_types
from distribution.recipients import Address, Recipient
from distribution.runs import MessageSpec, WaveOptions, create_run, start_wave
from distribution.waves import TokenBucket
from portal.db import make_engine
from portal.migrate import upgrade

RATE_PER_SECOND = 50
OPEN_ZONE, CLOSED_ZONE = "Europe/Brussels", "Asia/Tokyo"
START = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # Monday: 12:00 Brussels, 20:00 Tokyo
CLOSED = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 20:00 Brussels: the window has closed


class SimulatedClock:
    """Stands in for the dispatcher's ``utcnow``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_wave(make_session: sessionmaker[Session], recipients: int) -> int:
    """Recipients in both zones with email only, a run of 5 messages each, started."""
    closed = max(recipients // 10, 1)
    keys = [(f"open{n}", OPEN_ZONE) for n in range(recipients)] + [
        (f"closed{n}", CLOSED_ZONE) for n in range(closed)]
    with make_session() as session, session.begin():
        ensure_message_types(session)
        ids = session.scalars(sa.insert(Recipient.__table__).returning(Recipient.id), [
            {"recipient_key": key, "name": key, "language": "en", "time_zone": zone}
            for key, zone in keys]).all()
        session.execute(sa.insert(Address.__table__), [
            {"recipient_id": recipient_id, "channel": ChannelName.EMAIL,
             "value": f"{key}@example.com",
             "value_sha256": hashlib.sha256(f"{key}@example.com".encode()).hexdigest()}
            for recipient_id, (key, _) in zip(ids, keys, strict=True)])
        session.execute(sa.insert(Preference.__table__), [
            {"recipient_id": recipient_id, "message_type": "invoice", "channels": ["email"],
             "opted_out": False, "email_attachments": ["pdf"]} for recipient_id in ids])
        specs = [MessageSpec(key, f"invoice:{key}:{i}", {"number": f"{key}-{i}"})
                 for key, _ in keys for i in range(5)]
        summary = create_run(session, name="throttle", message_type="invoice", specs=specs,
                             selection={}, created_by="bench",
                             options=WaveOptions(rate_per_minute=RATE_PER_SECOND * 60))
        wave_id = summary.run.waves[0].id
        start_wave(session, wave_id, actor="bench")
        session.flush()
        session.get(TokenBucket, wave_id).refilled_at = START
    return wave_id


def released_in(make_session: sessionmaker[Session], wave_id: int, zone: str) -> int:
    """How many of the wave's deliveries to recipients in ``zone`` left pending."""
    with make_session() as session:
        return session.scalar(
            sa.select(sa.func.count()).select_from(Delivery)
            .join(Message, Message.id == Delivery.message_id)
            .join(Recipient, Recipient.id == Message.recipient_id)
            .where(Delivery.wave_id == wave_id, Recipient.time_zone == zone,
                   Delivery.state != DeliveryState.PENDING))


def run_bench(url: str, recipients: int, minutes: int) -> bool:
    """Tick through the simulated minutes; print the BENCH lines; True when goals are met."""
    engine = make_engine(url)
    clock = SimulatedClock(START)
    real_utcnow = dispatcher.utcnow
    dispatcher.utcnow = clock
    try:
        upgrade(engine)
        make_session = sessionmaker(engine, expire_on_commit=False)
        wave_id = make_wave(make_session, recipients)
        per_minute = [0] * minutes
        tick_seconds: list[float] = []
        dispatcher.tick(make_session, lambda delivery_id: None)  # t = 0: nothing earned yet
        for second in range(1, minutes * 60 + 1):
            clock.now = START + timedelta(seconds=second)
            started = time.perf_counter()
            result = dispatcher.tick(make_session, lambda delivery_id: None)
            tick_seconds.append(time.perf_counter() - started)
            per_minute[(second - 1) // 60] += result.total
        closed_zone = released_in(make_session, wave_id, CLOSED_ZONE)
        after_close = 0
        for second in range(60):
            clock.now = CLOSED + timedelta(seconds=second)
            after_close += dispatcher.tick(make_session, lambda delivery_id: None).total
    finally:
        dispatcher.utcnow = real_utcnow
        engine.dispose()
    target = RATE_PER_SECOND * 60
    deviation = max(abs(count - target) / target * 100 for count in per_minute)
    outside = closed_zone + after_close
    print(f"# releases per simulated minute: {per_minute} (target {target})")
    print(f"# released to {CLOSED_ZONE} (window closed): {closed_zone}; after the window "
          f"closed everywhere: {after_close}")
    print(f"BENCH throttle_max_minute_deviation_percent {deviation:.2f} %")
    print(f"BENCH throttle_released_outside_window {outside} deliveries")
    print(f"BENCH throttle_tick_median_ms {statistics.median(tick_seconds) * 1000:.1f} ms")
    print(f"BENCH throttle_tick_max_ms {max(tick_seconds) * 1000:.1f} ms")
    return deviation <= 2.0 and outside == 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, make a database of the benchmark's own, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000,
                        help="recipients in the open zone (5 messages each; default 2000)")
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default %(default)s)")
    parser.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file")
    args = parser.parse_args(argv)
    if args.recipients * 5 < RATE_PER_SECOND * 60 * args.minutes:
        parser.error("too few recipients: the wave would run dry before the last minute")
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="herald-bench-") as folder:
            ok = run_bench(f"sqlite:///{folder}/bench.sqlite3", args.recipients, args.minutes)
        return 0 if ok else 1
    with own_schema(args.url) as url:
        ok = run_bench(url, args.recipients, args.minutes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
