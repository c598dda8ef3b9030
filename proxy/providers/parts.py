"""OpenAI content parts that carry data (files, audio), decoded for the translators.

OpenAI's `file` part carries `file_data` as a data URL ("data:application/pdf;base64,...")
or as bare base64 with a `filename`, or a `file_id` of OpenAI's own Files API, which no
other provider can read. `input_audio` carries base64 `data` and a `format` (wav, mp3).
"""

from __future__ import annotations

import mimetypes
from typing import Any

from proxy.errors import InvalidRequest

AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
}


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding.rsplit(";", 1)[-1] != "base64" or not media_type:
        return None
    return media_type, data


def file_payload(file: dict[str, Any], param: str) -> tuple[str, str]:
    """(media type, base64 data) of a `file` part's inline data."""
    data = file.get("file_data")
    if not isinstance(data, str):
        raise InvalidRequest(
            f"{param}: file ids of OpenAI's Files API cannot be sent to this model's "
            "provider; send the file inline as file_data",
            param=param,
        )
    split = split_data_url(data)
    if split is not None:
        return split
    filename = file.get("filename")
    guessed = mimetypes.guess_type(filename)[0] if isinstance(filename, str) else None
    return guessed or "application/pdf", data


def audio_payload(audio: dict[str, Any], param: str) -> tuple[str, str]:
    """(media type, base64 data) of an `input_audio` part."""
    media_type = AUDIO_TYPES.get(str(audio.get("format")))
    if media_type is None:
        raise InvalidRequest(
            f"{param}.input_audio.format must be one of {', '.join(AUDIO_TYPES)}", param=param
        )
    return media_type, str(audio["data"])
