"""GET /dashboard: the usage dashboard, one page in the browser over the /api/ endpoints.

The page, its script and its style ship in the package and are read once, at start-up;
no build step, no CDN. They are sent with a strict Content-Security-Policy (this origin
only, no inline script), an ETag, and `Cache-Control: no-cache` so an upgrade is seen at
once while an unchanged asset costs a 304.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

_ASSETS = {
    "/dashboard": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/dashboard/app.css": ("app.css", "text/css; charset=utf-8"),
}
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class Asset:
    def __init__(self, name: str, media_type: str) -> None:
        self.body = resources.files("proxy.dashboard").joinpath("static", name).read_bytes()
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
        self.media_type = media_type

    async def respond(self, request: Request) -> Response:
        headers = {**_HEADERS, "etag": self.etag}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route(path, Asset(name, media_type).respond, methods=["GET"])
        for path, (name, media_type) in _ASSETS.items()
    ]
