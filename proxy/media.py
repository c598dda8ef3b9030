"""How many tokens an image, an audio clip or a PDF can bill, at most, per provider.

The reservation before a request must bound its real charge, and a media part's size
says nothing about its tokens (a 1x1 PNG bills 2,833 tokens on gpt-4o-mini; a 40-byte URL
can bill 48,169). So each part is bounded by the provider's published rule:

- OpenAI (providers' "Images and vision" guide): tile models bill base + per-tile tokens
  for up to 8 tiles of 512 px (gpt-4o: 85 + 170 x 8 = 1,445; gpt-4o-mini: 2,833 +
  5,667 x 8 = 48,169); patch models bill 32-px patches times a multiplier (at most
  1,536 x 2.46 = 3,779 at `high`; gpt-5.4/5.5 `original` up to 10,000 patches).
- Anthropic (vision guide): ceil(w/28) x ceil(h/28), at most 1,568 tokens per image, and
  4,784 on Claude Opus 4.7 and later.
- Gemini (token counting guide): 258 tokens per 768-px tile after fitting 3,072 px (up
  to 24 tiles, 6,192 tokens, when the short side is small); Gemini 3 `ultra_high` 2,240.
- Mistral (vision guide): 16-px patches on at most 1024 x 1024, plus a break per row:
  at most 4,160.
A data URL's own dimensions (PNG, GIF, WebP, JPEG headers) give a tighter bound; an
http(s) URL, whose size the gateway never sees, gets the provider's worst case. A
provider's `image_tokens` setting overrides the bound (for servers running other
vision encoders). Audio is bounded at 32 tokens a second (Gemini; OpenAI bills less) of
audio at no less than 3 kbit/s, and a PDF at the provider's per-page rule times its
page count (page objects counted, compressed object streams included).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
import zlib
from typing import Any

# Worst case for one image whose dimensions are unknown, per provider type.
IMAGE_WORST = {
    "openai": 10_000,
    "openai_compatible": 16_384,  # e.g. Qwen2-VL's default maximum on vLLM
    "deepseek": 10_000,
    "mistral": 4_160,
    "anthropic": 4_784,
    "gemini": 6_192,
    "mock": 10_000,
}
GPT_4O_MINI_IMAGE = 48_169
# Per PDF page: Anthropic extracts text (up to ~3,000 tokens) and adds the page image;
# Gemini bills a page like an image.
PDF_PAGE = {"anthropic": 3_000 + 4_784, "gemini": 2_240}
PDF_PAGE_DEFAULT = 3_000 + 10_000
AUDIO_TOKENS_PER_SECOND = 32
AUDIO_MIN_BYTES_PER_SECOND = 375  # 3 kbit/s: below any codec a provider accepts

_DATA_URL = re.compile(r"data:([^;,]*)(?:;[^,]*)?,")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_STREAM = re.compile(rb"stream\r?\n")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm")
# Inflated object streams are scanned for page objects up to this size, in total.
_INFLATE_LIMIT = 64 * 1024 * 1024


def image_tokens(provider_type: str, model: str, url: str, override: int | None = None) -> int:
    """The most one image part can bill on this provider and model."""
    if override is not None:
        return override
    worst = IMAGE_WORST.get(provider_type, IMAGE_WORST["openai_compatible"])
    if provider_type in ("openai", "mock", "openai_compatible") and model.startswith("gpt-4o-mini"):
        worst = GPT_4O_MINI_IMAGE
    size = image_size(url)
    if size is None:
        return worst
    width, height = size
    if provider_type == "anthropic":
        return min(worst, math.ceil(width / 28) * math.ceil(height / 28))
    if provider_type == "gemini":
        return min(worst, max(2_240, _gemini_tiles(width, height) * 258))
    if provider_type == "mistral":
        w, h = _fit(width, height, 1024)
        return min(worst, math.ceil(w / 16) * math.ceil(h / 16) + math.ceil(h / 16) + 1)
    if worst == GPT_4O_MINI_IMAGE:
        return 2_833 + 5_667 * _openai_tiles(width, height)
    # Not capped by `worst`: gpt-5.6 at `original` bills every 32-px patch of the image.
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    return max(85 + 170 * _openai_tiles(width, height), math.ceil(patches * 2.46))


def audio_tokens(data: str) -> int:
    """Base64 audio: its seconds at the lowest bitrate any provider takes, 32 tokens each."""
    decoded = len(data) * 3 // 4
    return math.ceil(decoded / AUDIO_MIN_BYTES_PER_SECOND) * AUDIO_TOKENS_PER_SECOND


def file_tokens(provider_type: str, file: dict[str, Any]) -> int:
    """A `file` part: a PDF's pages at the provider's per-page rule (at least one page)."""
    per_page = PDF_PAGE.get(provider_type, PDF_PAGE_DEFAULT)
    data = file.get("file_data")
    if not isinstance(data, str):
        return per_page * 100  # a file id: the gateway cannot see it; 100 pages assumed
    return per_page * max(1, pdf_pages(_decode(data)))


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF, including those inside compressed object streams (PDF 1.5+
    may keep every page object there, out of sight of a plain scan)."""
    pages = len(_PAGE.findall(pdf))
    view = memoryview(pdf)
    inflated = 0
    for found in _OBJECT_STREAM.finditer(pdf):
        start = _STREAM.search(pdf, found.end())
        if start is None or inflated >= _INFLATE_LIMIT:
            break
        try:
            text = zlib.decompressobj().decompress(view[start.end() :], _INFLATE_LIMIT - inflated)
        except zlib.error:
            continue
        inflated += len(text)
        pages += len(_PAGE.findall(text))
    return pages


def image_size(url: str) -> tuple[int, int] | None:
    """(width, height) from a data URL's PNG, GIF, WebP or JPEG header, else None."""
    if not url.startswith("data:"):
        return None
    header = _DATA_URL.match(url)
    if header is None:
        return None
    # The first 64 KiB of base64 hold any header these formats put first.
    head = _decode(url[header.end() : header.end() + 65_536])
    return _png(head) or _gif(head) or _webp(head) or _jpeg(head)


def _decode(data: str) -> bytes:
    data = data.strip()
    try:
        return base64.b64decode(data[: len(data) // 4 * 4], validate=False)
    except (binascii.Error, ValueError):
        return b""


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    return None


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    kind = head[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 < len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        length = int.from_bytes(head[at + 2 : at + 4], "big")
        # Start-of-frame markers carry the size; 0xC4, 0xC8 and 0xCC are other tables.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def _fit(width: int, height: int, limit: int) -> tuple[float, float]:
    scale = min(1.0, limit / max(width, height, 1))
    return width * scale, height * scale


def _openai_tiles(width: int, height: int) -> int:
    w, h = _fit(width, height, 2048)
    short = min(w, h)
    if short > 768:
        w, h = w * 768 / short, h * 768 / short
    return min(8, math.ceil(w / 512) * math.ceil(h / 512))


def _gemini_tiles(width: int, height: int) -> int:
    if width <= 384 and height <= 384:
        return 1
    w, h = _fit(width, height, 3072)
    tile = min(768.0, max(256.0, min(w, h) / 1.5))
    return math.ceil(w / tile) * math.ceil(h / tile)
