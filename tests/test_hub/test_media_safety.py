"""Customers' files at /media are images or downloads, never pages of the hub's origin (P10):
the served type comes from an allow-list decided when the file is saved, never from its name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.core.media import TYPES, decide

SCRIPT = b"<script>localStorage.pwned = localStorage.getItem('kefu.admin.token')</script>"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
# What a channel hands the hub (bytes, the customer's file name, the type the channel declared).
GIF_HTML = b"GIF89a<html>" + SCRIPT  # a real GIF header: the widget's own check lets it in
HOSTILE = {
    "gif-html-as-html": (GIF_HTML, "evil.html", "text/html"),
    "html": (b"<!doctype html><html>" + SCRIPT, "invoice.html", "text/html"),
    "html-as-png": (b"<html>" + SCRIPT, "receipt.png", "image/png"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>", "a.svg", None),
    "svg-declared": (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>',
        "a.svg",
        "image/svg+xml",
    ),
    "xhtml": (
        b'<html xmlns="http://www.w3.org/1999/xhtml">' + SCRIPT,
        "a.xhtml",
        "application/xhtml+xml",
    ),
    "xml": (b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>', "a.xml", "text/xml"),
    "js": (b"alert(document.domain)", "a.js", "application/javascript"),
    "html-named-pdf": (b"<html>" + SCRIPT, "invoice.pdf", None),
    "html-no-type": (b"<html>" + SCRIPT, None, None),
    "html-generic": (b"<html>" + SCRIPT, "page.htm", "application/octet-stream"),
}
FORBIDDEN = ("html", "svg", "xml", "javascript", "ecmascript")


def save(client: TestClient, data: bytes, name: str | None, mime_type: str | None) -> str:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    url: str = client.portal.call(  # type: ignore[union-attr]
        lambda: hub.save_media(data, name=name, mime_type=mime_type)
    )
    return url


def assert_inert(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "sandbox" in csp.split(";")[0] and "default-src 'none'" in csp
    assert "allow-scripts" not in csp


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_file_is_an_inert_download(client: TestClient, kind: str) -> None:
    data, name, mime_type = HOSTILE[kind]
    url = save(client, data, name, mime_type)
    for got in (client.get(url), client.head(url)):
        assert got.status_code == 200
        content_type = got.headers["content-type"]
        assert not any(word in content_type for word in FORBIDDEN), content_type
        assert content_type == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert_inert(got.headers)
    assert client.get(url).content == data  # the agent still gets the customer's bytes


def test_real_images_are_shown_inline_with_their_own_type(client: TestClient) -> None:
    png_url = save(client, PNG, "receipt 收据.png", "image/png")
    got = client.get(png_url)
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''receipt_%E6%94%B6%E6%8D%AE.png" in got.headers["content-disposition"]
    assert_inert(got.headers)
    # the bytes decide which image: a JPEG a channel called image/png, or didn't type at all
    for declared in ("image/png", None, "application/octet-stream"):
        got = client.get(save(client, JPEG, "photo", declared))
        assert got.headers["content-type"] == "image/jpeg", declared
        assert got.headers["content-disposition"].startswith("inline;")
    # a GIF header then HTML is still a GIF to a browser that doesn't sniff: an image, not a page
    got = client.get(save(client, GIF_HTML, "evil.html", "image/gif"))
    assert got.headers["content-type"] == "image/gif"
    assert got.headers["content-disposition"].startswith("inline;")


def test_documents_keep_their_type_and_are_downloaded(client: TestClient) -> None:
    cases = [
        (b"%PDF-1.7 ...", "报价单.pdf", "application/pdf", "application/pdf"),
        (b"%PDF-1.4 ...", "scan.pdf", "application/octet-stream", "application/pdf"),
        (b"OggS\x00\x02", None, "audio/ogg", "audio/ogg"),
        (b"From: a@example.com\r\n\r\nhi", "original.eml", "message/rfc822", "message/rfc822"),
        (b"PK\x03\x04", "table.xlsx", TYPES["xlsx"].mime_type, TYPES["xlsx"].mime_type),
        (b"hello", "note.txt", "text/plain; charset=gbk", "text/plain; charset=utf-8"),
    ]
    for data, name, declared, served in cases:
        url = save(client, data, name, declared)
        got = client.get(url)
        assert got.headers["content-type"] == served, (name, declared)
        assert got.headers["content-disposition"].startswith("attachment;")
        assert_inert(got.headers)
    # a nameless voice message is named by its type, not "file.bin"
    assert save(client, b"OggS\x00\x02", None, "audio/ogg").endswith("/file.ogg")
    chinese = client.get(save(client, b"%PDF-1.7", "报价单.pdf", "application/pdf"))
    assert chinese.headers["content-disposition"] == (
        "attachment; filename=\"___.pdf\"; filename*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95.pdf"
    )


def test_a_file_saved_before_types_were_recorded_is_served_safely(
    client: TestClient,
) -> None:
    """Files already on disk (`<32 hex>/<name>`, no type in the key): by their bytes only."""
    hub = client.app.state.hub  # type: ignore[attr-defined]
    old = {
        "evil.html": (b"<html>" + SCRIPT, "application/octet-stream", "attachment;"),
        "pic.svg": (b"<svg onload='x()'/>", "application/octet-stream", "attachment;"),
        "fake.png": (b"<html>" + SCRIPT, "application/octet-stream", "attachment;"),
        "photo.png": (PNG, "image/png", "inline;"),
        "scan.pdf": (b"%PDF-1.4", "application/pdf", "attachment;"),
    }
    for i, (name, (data, served, disposition)) in enumerate(old.items()):
        folder = hub.media.folder / f"{i:032x}"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)
        got = client.get(f"/media/{i:032x}/{name}")
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-type"] == served, name
        assert got.headers["content-disposition"].startswith(disposition), name
        assert_inert(got.headers)


def test_a_missing_file_answers_404_with_the_same_headers(client: TestClient) -> None:
    for url in ("/media/" + "0" * 32 + "-png/nothing.png", "/media/%2e%2e/secret_key", "/media/x"):
        for got in (client.get(url), client.head(url)):
            assert got.status_code == 404
            assert_inert(got.headers)
            assert got.headers["cache-control"] == "no-store"
    url = save(client, PNG, "a.png", "image/png")
    assert client.get(url).headers["cache-control"].startswith("private")
    # the type is the key's: the same file under another code is not a file of the store
    assert client.get(url.replace("-png/", "-bin/")).status_code == 404


def test_the_type_is_decided_by_the_declared_type_and_the_bytes_never_the_name() -> None:
    assert decide(PNG, "image/png") == "png"
    assert decide(PNG, "text/html") == "bin"  # declared as a page: never served as one
    assert decide(b"<svg/>", "image/svg+xml") == "bin"
    assert decide(b"GIF89a", "image/jpg") == "gif"
    assert decide(b"%PDF-1.7", "application/x-pdf") == "pdf"
    assert decide(b"%PDF-1.7", "text/html") == "bin"
    assert decide(b"RIFF\x00\x00\x00\x00WEBPVP8 ", None) == "webp"
    assert decide(b"\x00\x01", "application/x-shockwave-flash") == "bin"
    inline = {code for code, served in TYPES.items() if served.inline}
    assert inline == {"png", "jpg", "gif", "webp"}  # never SVG, never a page
