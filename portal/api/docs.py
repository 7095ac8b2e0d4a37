"""/api/v1/openapi.json and /api/v1/docs: the description, and a page people read it on."""

from __future__ import annotations

import json

from flask import render_template

from portal.api import bp
from portal.api.common import answer
from portal.api.spec import OPERATIONS, openapi, operation


@operation(bp, "/openapi.json", "GET", tag="documentation", auth="none", scope=None,
           summary="This OpenAPI 3.1 description",
           responses={200: ("The OpenAPI document.", {"type": "object"})})
def openapi_json():
    """The OpenAPI 3.1 description of /api/v1, generated from the code."""
    return answer(openapi())


@operation(bp, "/docs", "GET", tag="documentation", auth="none", scope=None,
           summary="This API's documentation page",
           responses={200: ("An HTML page.", None, "text/html")})
def docs_page():
    """The description as a page: every operation, its scope, parameters and schemas."""
    spec = openapi()
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            operations.append({
                "path": path, "method": method.upper(), "op": op,
                "anchor": op["operationId"],
                "body": json.dumps(op["requestBody"]["content"]["application/json"]["schema"],
                                   indent=2) if "requestBody" in op else None,
                "responses": [(status, r["description"],
                               json.dumps(next(iter(r["content"].values()))["schema"], indent=2)
                               if "content" in r else None)
                              for status, r in op["responses"].items()],
            })
    tags = sorted({o["op"]["tags"][0] for o in operations})
    schemas = {name: json.dumps(schema, indent=2)
               for name, schema in spec["components"]["schemas"].items()}
    return render_template("api/docs.html", spec=spec, operations=operations, tags=tags,
                           schemas=schemas, count=len(OPERATIONS))
