"""Drawn signatures: the canvas image posted as a PNG data URL, checked before it is kept."""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

PREFIX = "data:image/png;base64,"
MAX_PNG_BYTES = 200 * 1024
MAX_DATA_URL_LENGTH = len(PREFIX) + (MAX_PNG_BYTES + 2) // 3 * 4
MAX_WIDTH, MAX_HEIGHT = 2000, 1000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class DrawingError(ValueError):
    """The drawn signature is not an acceptable PNG; the message says what to do."""


def png_from_data_url(value: str) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,...`` URL, checked to be a sane PNG.

    Refuses anything else (another image type, a bad encoding, an image over
    :data:`MAX_PNG_BYTES` or larger than the canvas could ever be).
    """
    if not value.startswith(PREFIX):
        raise DrawingError("The drawn signature must be a PNG image; draw it again.")
    if len(value) > MAX_DATA_URL_LENGTH:
        raise DrawingError("The drawn signature is too large; clear it and draw it again.")
    try:
        data = base64.b64decode(value[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise DrawingError("The drawn signature could not be read; draw it again.") from None
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_PNG_BYTES:
        raise DrawingError("The drawn signature must be a PNG image; draw it again.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise DrawingError("The drawn signature must be a PNG image; draw it again.")
            width, height = image.size
            if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT):
                raise DrawingError("The drawn signature has an odd size; draw it again.")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise DrawingError("The drawn signature could not be read; draw it again.") from None
    return data
