"""What signing needs from the app's settings, gathered once per request, command or task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import Flask, current_app

from distribution.documents import DocumentStore, make_store


@dataclass(frozen=True)
class SigningContext:
    """Settings and the document store, passed to the signing services."""

    public_url: str
    secret_key: str = field(repr=False)
    store: DocumentStore
    remind_every: timedelta = timedelta(hours=48)
    expire_after: timedelta = timedelta(days=30)
    key_file: Path | None = None
    key_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_app(cls, app: Flask | None = None) -> SigningContext:
        """The context of ``app`` (default: the current app)."""
        app = app or current_app
        settings = app.config["HERALD"]
        return cls(public_url=settings.public_url, secret_key=app.config["SECRET_KEY"],
                   store=make_store(settings.document_store, settings.instance_path),
                   remind_every=timedelta(hours=settings.signing_remind_hours),
                   expire_after=timedelta(days=settings.signing_expire_days),
                   key_file=settings.signing_key_file,
                   key_password=settings.signing_key_password)
