"""Who may do what in the ops console.

Every staff member may look; acting on runs and waves needs the billing operator
or admin role. Every action is logged with the actor string from :func:`actor`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import abort
from flask_login import current_user, login_required

from portal.models import Role

View = TypeVar("View", bound=Callable)

# Roles that may create, start, pause, resume, cancel and re-rate runs and waves.
RUN_OPERATORS = frozenset({Role.ADMIN, Role.BILLING_OPERATOR})


def staff_required(view: View) -> View:
    """Allow signed-in staff only; customers get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def may_operate_runs() -> bool:
    """True when the signed-in user may act on runs and waves."""
    return current_user.is_authenticated and current_user.role in RUN_OPERATORS


def run_operator_required(view: View) -> View:
    """Allow admins and billing operators; other staff get 403."""

    @wraps(view)
    @staff_required
    def wrapped(*args, **kwargs):
        if not may_operate_runs():
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def actor() -> str:
    """How the log names the signed-in staff member: id, role and email."""
    return f"staff:{current_user.id}:{current_user.role.value}:{current_user.email}"
