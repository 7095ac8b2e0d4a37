"""Getting in: sign-in (password, emailed link, second factor), sessions, invitations."""

from flask import Blueprint

# Its commands are "herald customers ..." (e.g. "herald customers invite").
bp = Blueprint("auth", __name__, cli_group="customers")


@bp.record_once
def _register_tasks(state) -> None:
    from portal.auth import emails, housekeeping

    emails.init_app(state.app)
    housekeeping.init_app(state.app)


from portal.auth import (  # noqa: E402,F401  (registers views on bp)
    cli,
    oidc_routes,
    routes,
    security_routes,
)
