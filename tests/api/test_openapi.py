"""The OpenAPI document a real daemon serves: every declared route, its summary, security,
body and statuses, and schemas that every reference resolves to."""

from __future__ import annotations

import json
import re

from supervisor import __version__
from supervisor.api.app import ROUTES
from supervisor.api.routes import Audience


def test_openapi_document_lists_every_route(world):
    response = world.request("GET", "/api/v1/openapi.json", token=None)
    doc = json.loads(response.content)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == __version__
    assert set(doc["paths"]) == {route.path for route in ROUTES}
    statuses = {"200", "400", "401", "403", "404", "405", "408", "409", "413", "415", "421", "422"}
    statuses.add("503")
    for route in ROUTES:
        method, path = route.method, route.path
        op = doc["paths"][path][method]
        assert op["summary"] == route.summary
        assert ("security" in op) == (route.audience is not Audience.OPEN), (method, path)
        assert ("requestBody" in op) == (route.body is not None), (method, path)
        assert set(op["responses"]) == statuses
    schemas = doc["components"]["schemas"]
    for name in ("Runner", "Launch", "Heartbeat", "Error", "ProjectCreate", "Register"):
        assert name in schemas
    assert schemas["Error"]["required"] == ["error", "message"]
    assert schemas["Launch"]["additionalProperties"] is False  # unknown fields are refused
    # every $ref points at a schema that exists
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))
    assert refs and set(refs) <= set(schemas)
