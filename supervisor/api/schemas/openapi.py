"""The OpenAPI 3.1 document of a route table, its schemas generated from the structs (so it
cannot drift from what the server accepts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from supervisor import __version__
from supervisor.api.routes import Audience, Route
from supervisor.api.schemas.base import Error

ERROR_STATUSES = {
    400: "Malformed request",
    401: "Missing or wrong bearer token",
    403: "Sent by a web page (an Origin or Sec-Fetch-Site header from another site)",
    404: "No such object",
    405: "The route does not take this method",
    408: "The body did not arrive within 30 s",
    409: "Conflicts with the object's state, an existing name, a cap, or a spent budget",
    413: "The body is larger than 1 MiB",
    415: "The body is not application/json",
    421: "The Host header is not 127.0.0.1, localhost or [::1] with the API's port",
    422: "Invalid fields, or a command not found on PATH",
    503: "Shutting down, or an OS service it needs (the keyring) is missing",
}


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``, schemas generated from the structs."""
    types = [t for r in routes for t in (r.body, r.response) if t is not None] + [Error]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method, path, body, response = route.method, route.path, route.body, route.response
        op: dict[str, Any] = {"summary": route.summary, "responses": {}}
        if route.audience is not Audience.OPEN:
            op["security"] = [{"bearer": []}]
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[body]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if response is not None:
            ok["content"] = {"application/json": {"schema": schema_of[response]}}
        op["responses"]["200"] = ok
        for status, text in ERROR_STATUSES.items():
            op["responses"][str(status)] = {
                "description": text,
                "content": {"application/json": {"schema": schema_of[Error]}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stratavore supervisor API", "version": __version__},
        "servers": [{"url": "http://127.0.0.1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
