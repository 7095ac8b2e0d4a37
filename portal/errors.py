"""Error pages: plain HTML for people, JSON for the API; never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: _l("The request could not be understood. Go back and try again."),
    403: _l("You do not have access to this page."),
    404: _l("There is nothing here. Check the address, or go to your invoices."),
    413: _l("That file is too large."),
    429: _l("Too many attempts. Wait a minute and try again."),
    500: _l("Something went wrong on our side. It has been logged; try again in a minute."),
}


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = _l("This form has expired. Reload the page and submit it again.")
        return _render(400, message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        return _render(code, MESSAGES.get(code, error.description or _l("Error.")))

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, MESSAGES[500])


def _render(code: int, message: str):
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return {"error": {"status": code, "message": str(message)}}, code
    return render_template("errors/error.html", code=code, message=message), code
