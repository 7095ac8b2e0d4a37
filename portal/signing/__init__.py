"""Signing and acknowledging documents: requests, the signer's page, evidence, signed PDFs."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("signing", __name__)

from portal.signing import routes  # noqa: E402,F401


def init_app(app: Flask) -> None:
    """Register the pages, the ``herald signatures`` commands and the reminder task."""
    from portal.signing.cli import signatures_group
    from portal.signing.tasks import register_tasks

    app.register_blueprint(bp)
    app.cli.add_command(signatures_group)
    register_tasks(app)
