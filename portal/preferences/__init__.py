"""The customer's "How we reach you" page, and the files that make the portal an installable app."""

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

bp = Blueprint("preferences", __name__)


@bp.record_once
def _register_tasks(state: BlueprintSetupState) -> None:
    # The verification email is sent by a task that must exist in every process that
    # builds the app (web and worker), so it is registered with the blueprint.
    from portal.preferences import verification_mail

    verification_mail.init_app(state.app)


from portal.preferences import routes, webapp  # noqa: E402,F401
