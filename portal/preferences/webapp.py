"""The files that make the portal installable: the web app manifest and the service worker.

The service worker is served from the site root, not ``/static/``, because a
worker controls only the paths under its own URL: from ``/sw.js`` it can open
any portal page when a notification is clicked. ``Service-Worker-Allowed: /``
says the same for browsers that check it, and ``no-cache`` makes browsers pick
up a new worker on the next visit.
"""

from __future__ import annotations

from flask import current_app, send_from_directory
from werkzeug.wrappers import Response

from portal.preferences import bp

MANIFEST_MEDIA_TYPE = "application/manifest+json"


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker script, with the whole site as its scope."""
    response = send_from_directory(current_app.static_folder, "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest, with its registered media type."""
    return send_from_directory(current_app.static_folder, "manifest.webmanifest",
                               mimetype=MANIFEST_MEDIA_TYPE, max_age=3600)
