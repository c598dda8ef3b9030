"""Media token bounds: image sizes read from headers, PDF pages, the provider rules."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from proxy.media import image_size, image_tokens, pdf_pages


def data_url(kind: str, raw: bytes) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


def png(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height)


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, height, width) + b"\x03\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height)


def webp(width: int, height: int) -> bytes:
    body = (
        b"VP8X"
        + b"\x00" * 8
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    return b"RIFF" + b"\x00" * 4 + b"WEBP" + body


@pytest.mark.parametrize("make", [png, jpeg, gif, webp])
def test_image_sizes_come_from_the_header(make) -> None:  # type: ignore[no-untyped-def]
    kind = make.__name__
    assert image_size(data_url(kind, make(1234, 567) + b"\x00" * 64)) == (1234, 567)


def test_unknown_sizes_get_the_providers_worst_case() -> None:
    url = "https://example.invalid/x.png"
    assert image_tokens("openai", "gpt-4o-mini", url) == 48_169
    assert image_tokens("openai", "gpt-4o", url) == 10_000
    assert image_tokens("anthropic", "claude-sonnet-4-5", url) == 4_784
    assert image_tokens("gemini", "gemini-2.5-flash", url) == 6_192
    assert image_tokens("openai_compatible", "qwen", url, override=777) == 777


def test_known_sizes_follow_the_providers_rules() -> None:
    small = data_url("png", png(512, 512))
    assert image_tokens("openai", "gpt-4o-mini", small) == 2_833 + 5_667  # one tile
    assert image_tokens("anthropic", "claude-haiku-4-5", small) == 19 * 19
    assert image_tokens("gemini", "gemini-2.5-flash", small) == 2_240  # Gemini 3's ultra_high
    huge = data_url("png", png(8000, 8000))
    # gpt-5.6 bills every 32-px patch at `original`; the bound must too.
    assert image_tokens("openai", "gpt-5.6", huge) >= 250 * 250


def test_pdf_pages_are_counted_in_object_streams_too() -> None:
    plain = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >>\n2 0 obj << /Type /Page >>\n" * 1
    plain += b"3 0 obj << /Type /Page >>\n"
    assert pdf_pages(plain) == 2
    hidden = zlib.compress(b"<< /Type /Page >> << /Type /Page >> << /Type /Page >>")
    compressed = b"%PDF-1.5\n4 0 obj << /Type /ObjStm /Filter /FlateDecode >>\nstream\n"
    compressed += hidden + b"\nendstream\n"
    assert pdf_pages(compressed) == 3
