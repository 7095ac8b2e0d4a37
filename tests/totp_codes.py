"""TOTP codes for tests that sign in staff with a second factor."""

from __future__ import annotations

import time

import pyotp

# Time a code may need from being made to being checked (a browser round trip on a busy
# machine included); within this much of a step's end, wait for the next step.
MARGIN_SECONDS = 3.0


def previous_step_code(secret: str) -> str:
    """The code of the step before the current one, which the server still accepts.

    The server allows one step either side of its own. A code made just before a step
    ends would be two steps old when it arrives, and refused: such a code is never made;
    the next step is waited for first. The previous step's code leaves the current one
    unused, for a test that needs a second code soon after.
    """
    interval = pyotp.TOTP(secret).interval
    left = interval - time.time() % interval
    if left < MARGIN_SECONDS:
        time.sleep(left + 0.05)
    return pyotp.TOTP(secret).at(time.time() - interval)
