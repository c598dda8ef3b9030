"""OpenAPI 3.1 from the endpoint declarations, and a self-contained docs page."""

from __future__ import annotations

import html
import json
from typing import Any

from proxy import __version__
from proxy.api.routing import Endpoint, Param

_TYPES = {str: "string", int: "integer", float: "number"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-gateway management API",
            "version": __version__,
            "description": "Authenticate with `Authorization: Bearer <gateway key>`. "
            "Admin endpoints need an admin key; a user's key sees only "
            "its own user's data. Errors use OpenAI's envelope.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": "OK",
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": endpoint.example}
            },
        },
        "400": {"description": "Invalid parameter or body", **error},
        "401": {"description": "Missing or invalid key", **error},
        "403": {"description": "The key lacks the scope", **error},
        "404": {"description": "Not found", **error},
    }
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": _operation_id(endpoint),
        "tags": ["admin" if endpoint.admin else "user"],
        "parameters": [_parameter(p) for p in endpoint.params],
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body}},
        }
    return operation


def _operation_id(endpoint: Endpoint) -> str:
    path = endpoint.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{endpoint.method.lower()}_{path}"


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _TYPES[param.kind]}
    if param.choices:
        schema["enum"] = list(param.choices)
    if param.default is not None:
        schema["default"] = param.default
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    return {
        "name": param.name,
        "in": param.location,
        "required": param.required or param.location == "path",
        "description": param.description or param.name,
        "schema": schema,
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A plain HTML page of every endpoint: readable offline, no scripts fetched."""
    rows = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = (
                ", ".join(
                    f"{p['name']} ({p['in']}, {p['schema']['type']}"
                    f"{', required' if p['required'] else ''})"
                    for p in operation["parameters"]
                )
                or "none"
            )
            example = next(iter(operation["responses"].values()))["content"]["application/json"][
                "example"
            ]
            rows.append(
                f"<h3><code>{method.upper()} {html.escape(path)}</code> "
                f"<small>[{operation['tags'][0]}]</small></h3>"
                f"<p>{html.escape(operation['summary'])}</p><p>Parameters: "
                f"{html.escape(params)}</p><pre>{html.escape(_pretty(example))}</pre>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>llm-gateway API</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;"
        "padding:.5em;overflow:auto}</style></head><body><h1>llm-gateway management API</h1>"
        f"<p>{html.escape(spec['info']['description'])} Machine-readable: "
        "<a href='/openapi.json'>/openapi.json</a>.</p>" + "".join(rows) + "</body></html>"
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2)
