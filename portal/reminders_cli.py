"""``herald reminders run``: plan today's payment reminders as a run of paced waves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from distribution.documents import make_store
from distribution.reminders import PolicyError, ReminderPolicy
from distribution.runs import RunError, WaveOptions, start_wave
from portal.db import get_database
from portal.reminders import create_reminder_run

ACTOR = "cli"


@click.group("reminders")
def reminders_group() -> None:
    """Payment reminders before, on and after the due date."""


@reminders_group.command("run")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]),
              help="The day to plan for (default: today).")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path),
              help="A JSON reminder policy (default: -3, 0, 7 and 21 days, a fee on the last).")
@click.option("--rate", "rate_per_minute", type=float, default=60.0, show_default=True,
              help="Releases per minute.")
@click.option("--window", default="8-20", show_default=True,
              help="Send window in the customer's local hours, e.g. 8-20.")
@click.option("--weekends", is_flag=True, help="Also send on Saturday and Sunday.")
@click.option("--start", is_flag=True, help="Start the run's first wave at once.")
@with_appcontext
def run_command(today, policy_file, rate_per_minute, window, weekends, start) -> None:
    """Create a run of the reminders due today (each reminder goes out once)."""
    start_hour, _, end_hour = window.partition("-")
    if not (start_hour.isdigit() and end_hour.isdigit()):
        raise click.BadParameter("write the window as START-END hours, e.g. 8-20",
                                 param_hint="--window")
    try:
        policy = (ReminderPolicy.from_json(policy_file.read_text("utf-8")) if policy_file
                  else ReminderPolicy())
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from exc
    options = WaveOptions(rate_per_minute=rate_per_minute, window_start_hour=int(start_hour),
                          window_end_hour=int(end_hour),
                          weekdays=tuple(range(7)) if weekends else (0, 1, 2, 3, 4))
    settings = current_app.config["HERALD"]
    store = make_store(settings.document_store, settings.instance_path)
    day = today.date() if today else date.today()
    try:
        with get_database().session_scope() as session:
            summary = create_reminder_run(session, policy, options, today=day,
                                          public_url=settings.public_url, created_by=ACTOR,
                                          store=store,
                                          link_days=settings.pay_link_days_after_due)
            waves = [wave.id for wave in summary.run.run.waves] if summary.run else []
            if start and waves:
                start_wave(session, waves[0], actor=ACTOR)
    except RunError as exc:
        raise click.ClickException(str(exc)) from exc
    notes = (f"; {summary.cancelled} unsent reminders of settled invoices cancelled"
             if summary.cancelled else "")
    if summary.run is None:
        click.echo(f"No reminders due on {day.isoformat()}{notes}.")
        return
    stages = ", ".join(f"{offset:+d} days: {count}" for offset, count in
                       sorted(summary.stages.items()))
    click.echo(f"Run {summary.run.run.id}: {summary.run.messages_created} reminders ({stages}); "
               f"{summary.pdfs} with a PDF; waves {', '.join(map(str, waves))}"
               + (" (first started)" if start else "") + notes)
