"""What is wrong with an import file, said so that a billing clerk can fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an import file.

    ``location`` is where in the file (``row 14``, ``document 3``,
    ``/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity``), ``field`` the name
    the file uses for the value, and ``message`` what is wrong and how to fix it.
    """

    file: str
    location: str
    field: str
    message: str
    document: str = ""  # which document of the file, to count refused documents

    def __str__(self) -> str:
        parts = [self.file, self.location]
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(p for p in parts if p) + f": {self.message}"


class ImportRejected(Exception):
    """A file has problems; nothing of it was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class Locator:
    """Turns a path inside a normalised document into the place in the file it came from.

    JSON keeps the path (``document 2, lines[3].quantity``); CSV maps each
    line back to its row and each field to its column.
    """

    def __init__(self, file: str, document_label: str) -> None:
        self.file = file
        self.document_label = document_label

    def problem(self, path: str, message: str) -> Problem:
        """A problem at ``path`` (dotted, with ``[i]`` for list items, 0-based)."""
        return Problem(self.file, self.document_label, _human_path(path), message,
                       self.document_label)


def _human_path(path: str) -> str:
    # lists are 0-based inside, 1-based for people: lines[0].quantity -> lines[1].quantity
    out, i = [], 0
    while i < len(path):
        # A field named by the file may hold brackets ("a[b"): only a whole "[n]" is an index.
        j = path.find("]", i)
        if path[i] == "[" and j != -1:
            index = path[i + 1 : j]
            out.append(f"[{int(index) + 1}]" if index.isdigit() else path[i : j + 1])
            i = j + 1
        else:
            out.append(path[i])
            i += 1
    return "".join(out)
