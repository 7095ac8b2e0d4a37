"""Herald's app icons, drawn by this code: an envelope with a notification dot.

``python -m portal.preferences.icons static/icons`` writes ``icon-192.png``,
``icon-512.png`` (rounded, transparent corners) and ``maskable-512.png`` (full
bleed, the drawing inside the central safe circle that launchers may crop to),
the same shapes as ``static/icons/icon.svg``. Pure Python (zlib and struct), so
building the icons needs nothing installed; the PNGs are committed and a test
checks they are what this code draws.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

BLUE = (29, 78, 216)
WHITE = (255, 255, 255)
AMBER = (245, 158, 11)
SUPERSAMPLE = 3

Shape = Callable[[float, float], bool]


def _rounded_square(radius: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        dx = max(radius - x, 0.0, x - (1 - radius))
        dy = max(radius - y, 0.0, y - (1 - radius))
        return dx * dx + dy * dy <= radius * radius
    return inside


def _rect(x0: float, y0: float, x1: float, y1: float) -> Shape:
    return lambda x, y: x0 <= x <= x1 and y0 <= y <= y1


def _circle(cx: float, cy: float, r: float) -> Shape:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _segment(ax: float, ay: float, bx: float, by: float, half_width: float) -> Shape:
    length2 = (bx - ax) ** 2 + (by - ay) ** 2

    def inside(x: float, y: float) -> bool:
        t = max(0.0, min(1.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2))
        px, py = ax + t * (bx - ax), ay + t * (by - ay)
        return (x - px) ** 2 + (y - py) ** 2 <= half_width * half_width
    return inside


def layers(maskable: bool) -> list[tuple[Shape, tuple[int, int, int]]]:
    """The drawing as (shape, colour) layers in unit coordinates, painted in order."""
    # A maskable icon's content must sit in the central circle of 80 % diameter.
    scale, offset = (0.72, 0.14) if maskable else (1.0, 0.0)

    def at(value: float) -> float:
        return offset + value * scale

    background = _rect(0, 0, 1, 1) if maskable else _rounded_square(0.22)
    x0, y0, x1, y1 = at(0.2), at(0.33), at(0.8), at(0.72)
    stroke = 0.035 * scale
    return [
        (background, BLUE),
        (_rect(x0, y0, x1, y1), WHITE),
        (_segment(x0 + stroke, y0 + stroke, at(0.5), at(0.55), stroke), BLUE),
        (_segment(at(0.5), at(0.55), x1 - stroke, y0 + stroke, stroke), BLUE),
        (_circle(at(0.78), at(0.31), 0.13 * scale), BLUE),
        (_circle(at(0.78), at(0.31), 0.09 * scale), AMBER),
    ]


def render(size: int, *, maskable: bool) -> bytes:
    """The icon as an RGBA PNG of ``size`` × ``size`` pixels."""
    drawing = layers(maskable)
    samples = SUPERSAMPLE * SUPERSAMPLE
    offsets = [(i + 0.5) / SUPERSAMPLE for i in range(SUPERSAMPLE)]
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter type: none
        for px in range(size):
            red = green = blue = alpha = 0
            for oy in offsets:
                y = (py + oy) / size
                for ox in offsets:
                    x = (px + ox) / size
                    colour = None
                    for shape, paint in drawing:
                        if shape(x, y):
                            colour = paint
                    if colour is not None:
                        red, green, blue = red + colour[0], green + colour[1], blue + colour[2]
                        alpha += 1
            if alpha:
                rows += bytes((red // alpha, green // alpha, blue // alpha,
                               math.floor(255 * alpha / samples + 0.5)))
            else:
                rows += b"\0\0\0\0"
    return _png(size, size, bytes(rows))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


ICONS = {"icon-192.png": (192, False), "icon-512.png": (512, False),
         "maskable-512.png": (512, True)}


def write_icons(folder: Path) -> list[Path]:
    """Draw every icon into ``folder``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (size, maskable) in ICONS.items():
        path = folder / name
        path.write_bytes(render(size, maskable=maskable))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_icons(Path(sys.argv[1] if len(sys.argv) > 1 else "static/icons")):
        print(written_path)
