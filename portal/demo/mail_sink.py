"""A local SMTP server for the demo: every email Herald sends lands in the instance folder.

Nothing leaves the machine. Messages are kept as ``.eml`` files in
``instance/demo-mail/``, where any mail program (or the ops console) can open them.
"""

from __future__ import annotations

import socket
from pathlib import Path

from aiosmtpd.controller import Controller


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        number = len(list(self.folder.glob("*.eml"))) + 1
        path = self.folder / f"{number:06d}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 OK: kept in the demo mailbox"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mail_sink(instance_path: Path) -> tuple[Controller, int]:
    """Start the sink on a free loopback port; returns the controller and the port."""
    folder = instance_path / "demo-mail"
    folder.mkdir(exist_ok=True)
    port = free_port()
    controller = Controller(_SaveToFolder(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port
