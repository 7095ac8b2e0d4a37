"""Bad input to the UBL reader, property-based: whatever the bytes, ``read_ubl`` returns
a Document or raises UblReadError; entities are never expanded, nothing outside the
document is ever read (no file, no network), and size and depth are bounded."""

from __future__ import annotations

import http.server
import threading
import time
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from einvoice import Document, UblReadError, read_ubl


@pytest.fixture(scope="module")
def base_xml(rules_dir) -> bytes:
    return (rules_dir / "examples" / "base-example.xml").read_bytes()


def _read(data: bytes) -> Document | UblReadError:
    """The reader's answer: a Document or its refusal (anything else fails the test)."""
    try:
        return read_ubl(data)
    except UblReadError as refused:
        assert refused.message and refused.element
        return refused


@given(st.binary(max_size=4096))
def test_any_bytes_are_read_or_refused(data):
    _read(data)


@given(st.text(max_size=2000))
def test_any_text_is_read_or_refused(text):
    _read(text.encode("utf-8", "surrogatepass"))


@given(data=st.data())
def test_a_damaged_invoice_is_read_or_refused(base_xml, data):
    """Cut, spliced, repeated or overwritten pieces of a real invoice."""
    start = data.draw(st.integers(0, len(base_xml)))
    end = data.draw(st.integers(start, min(len(base_xml), start + 200)))
    insert = data.draw(st.one_of(
        st.binary(max_size=50),
        st.sampled_from([b"<", b">", b"&", b"&amp;", b"]]>", b"<!--", b"\x00", b"\x1b", b"\xff",
                         b"<cbc:ID>x</cbc:ID>", b"</cac:InvoiceLine>", b"&#0;", b"&#x1;",
                         b'<!DOCTYPE x [<!ENTITY e "x">]>', b"<?xml version='1.1'?>"]),
        st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass"))))
    _read(base_xml[:start] + insert + base_xml[end:])


@given(st.sampled_from(["<", "&", "\x00", "\x01", "\x0b", "\x1f", "\ufffe", "\ud800",
                        "]]>", "\x7f", "\u202e"]), st.integers(0, 40))
def test_control_characters_in_text_are_refused_or_kept_as_text(base_xml, char, offset):
    """Characters XML 1.0 forbids are refused; the others stay text, never markup."""
    marker = b"<cbc:Note>"
    position = base_xml.index(b"</cbc:ID>")
    note = ("Note " + "x" * offset + char).encode("utf-8", "surrogatepass")
    damaged = base_xml[:position] + b"</cbc:ID>" + marker + note + b"</cbc:Note>" \
        + base_xml[position + len(b"</cbc:ID>"):]
    result = _read(damaged)
    if isinstance(result, Document):
        assert any(n.endswith(char) for n in result.notes)


def _with_doctype(base_xml: bytes, doctype: str, reference: str) -> bytes:
    body = base_xml.split(b"?>", 1)[1] if base_xml.startswith(b"<?xml") else base_xml
    body = body.replace(b"<cbc:ID>Snippet1</cbc:ID>",
                        f"<cbc:ID>{reference}</cbc:ID>".encode(), 1)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + doctype.encode() + body


BILLION_LAUGHS = "<!DOCTYPE Invoice [<!ENTITY lol \"lol\">" + "".join(
    f"<!ENTITY lol{i} \"{('&lol' + str(i - 1) + ';') * 10 if i > 1 else '&lol;' * 10}\">"
    for i in range(1, 10)) + "]>"


@given(st.integers(1, 9))
def test_entity_expansion_is_refused_fast(base_xml, depth):
    started = time.process_time()
    result = _read(_with_doctype(base_xml, BILLION_LAUGHS, f"&lol{depth};"))
    # Refused by the DOCTYPE check, or earlier by libxml2's amplification limit.
    assert isinstance(result, UblReadError)
    assert "DOCTYPE" in result.message or "entity" in result.message
    assert time.process_time() - started < 1


@given(st.sampled_from(["SYSTEM", "PUBLIC \"-//x//y\""]),
       st.sampled_from(["{file}", "file://{file}", "file:///etc/passwd", "/etc/hostname"]))
def test_external_file_entities_are_never_read(base_xml, tmp_path_factory, keyword, target):
    secret = tmp_path_factory.mktemp("xxe") / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    system = target.format(file=secret)
    doctype = f'<!DOCTYPE Invoice [<!ENTITY xxe {keyword} "{system}">]>'
    result = _read(_with_doctype(base_xml, doctype, "&xxe;"))
    assert isinstance(result, UblReadError)
    assert "TOP-SECRET" not in result.message and "root:" not in result.message


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        _CountingHandler.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"FROM-THE-NETWORK")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_peer():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@given(st.sampled_from([
    '<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "{url}/entity">]>',
    '<!DOCTYPE Invoice SYSTEM "{url}/dtd">',
    '<!DOCTYPE Invoice [<!ENTITY % remote SYSTEM "{url}/parameter"> %remote;]>',
]))
def test_external_http_entities_and_dtds_are_never_fetched(base_xml, http_peer, doctype):
    before = len(_CountingHandler.requests)
    result = _read(_with_doctype(base_xml, doctype.format(url=http_peer), "&xxe;"
                                 if "xxe" in doctype else "Snippet1"))
    assert isinstance(result, UblReadError) and "FROM-THE-NETWORK" not in result.message
    assert len(_CountingHandler.requests) == before


def test_an_xinclude_is_not_followed(base_xml, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    include = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret}" '
               'parse="text"/>').encode()
    result = _read(base_xml.replace(b"<cbc:ID>Snippet1</cbc:ID>",
                                    b"<cbc:ID>Snippet1</cbc:ID><cbc:Note>" + include
                                    + b"</cbc:Note>", 1))
    text = result.notes if isinstance(result, Document) else [result.message]
    assert not any("TOP-SECRET" in t for t in text)


@given(st.integers(300, 20_000))
def test_deep_nesting_is_refused_without_recursion(base_xml, depth):
    nested = b"<cac:X>" * depth + b"</cac:X>" * depth
    data = base_xml.replace(b"<cbc:ID>Snippet1</cbc:ID>",
                            b"<cbc:ID>Snippet1</cbc:ID><cbc:Note>" + nested + b"</cbc:Note>", 1)
    # libxml2 limits depth to 256 without huge_tree: refused, never a RecursionError.
    assert isinstance(_read(data), UblReadError)


def test_huge_text_nodes_are_refused(base_xml):
    huge = b"A" * (11 * 1024 * 1024)  # over libxml2's 10 MB text limit without huge_tree
    data = base_xml.replace(b"<cbc:ID>Snippet1</cbc:ID>",
                            b"<cbc:ID>Snippet1</cbc:ID><cbc:Note>" + huge + b"</cbc:Note>", 1)
    started = time.process_time()
    assert isinstance(_read(data), UblReadError)
    assert time.process_time() - started < 5


@given(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis"]),
       st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "nonsense", None]))
def test_wrong_or_mismatched_encodings_are_read_or_refused(base_xml, codec, declared):
    text = base_xml.decode("utf-8").split("?>", 1)[1].replace("Snippet1", "Café-€-日本")
    declaration = (f'<?xml version="1.0" encoding="{declared}"?>' if declared
                   else '<?xml version="1.0"?>')
    try:
        data = (declaration + text).encode(codec)
    except UnicodeEncodeError:
        data = (declaration + text).encode(codec, "replace")
    result = _read(data)
    if isinstance(result, Document) and codec.startswith("utf") and declared in ("UTF-16", None):
        assert result.number == "Café-€-日本"
