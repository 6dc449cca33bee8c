"""The OpenAPI 3.1 document of `payrule serve`, and the plain HTML page `/docs` renders from it.

Written by hand rather than generated from docstrings (starlette.schemas), because the hot endpoint is a
bare ASGI app and the interesting parts - the claim and decision objects, the problem types - are better
said once here. The claim schema is built from `payrule.runtime.schema`, the same field list the readers
use, so it cannot drift from what is read. The HTML page needs no script and no network: it is the
document itself, laid out as headings, tables and the JSON of each schema.
"""
from __future__ import annotations

import html
import json
from typing import Any

from payrule import __version__
from payrule.runtime.schema import CLAIM_FIELDS, LINE_FIELDS, Field

__all__ = ["openapi_document", "docs_html"]


def _field_schema(f: Field, lines: dict | None = None) -> dict:
    if f.name == "lines" and lines is not None:
        return {"type": "array", "items": lines, "minItems": 1, "description": f.doc}
    if f.kind == "int":
        out: dict[str, Any] = {"type": "integer"}
        if f.minimum is not None:
            out["minimum"] = f.minimum
    elif f.kind == "date":
        out = {"type": "string", "format": "date"}
    elif f.kind == "list":
        item: dict[str, Any] = {"type": "string"}
        if f.item_pattern is not None:
            item["pattern"] = "^" + f.item_pattern.pattern.removesuffix("\\Z") + "$"
        out = {"type": "array", "items": item}
    else:
        out = {"type": "string"}
        if f.item_pattern is not None:
            out["pattern"] = "^" + f.item_pattern.pattern.removesuffix("\\Z") + "$"
    out["description"] = f.doc
    return out


def _object(fields: dict[str, Field], lines: dict | None = None) -> dict:
    return {"type": "object",
            "properties": {name: _field_schema(f, lines) for name, f in fields.items()},
            "required": [name for name, f in fields.items() if f.required],
            "additionalProperties": True}


def _problem_example(status: int, title: str, detail: str, kind: str = "about:blank") -> dict:
    return {"type": kind, "title": title, "status": status, "detail": detail}


def openapi_document(max_body: int, problem_types: dict[str, str]) -> dict:
    """The document served at /openapi.json. `problem_types`: the slugs and titles of the body problems."""
    line = _object(LINE_FIELDS)
    claim = _object(CLAIM_FIELDS, {"$ref": "#/components/schemas/Line"})
    claim["description"] = ("A claim (contract section 1). Anything the reader cannot read is answered as an error "
                            "object in the claim's place, not as a failed request.")
    problem_ref = {"$ref": "#/components/schemas/Problem"}

    def problem(description: str) -> dict:
        return {"description": description, "content": {"application/problem+json": {"schema": problem_ref}}}

    def ok(description: str, schema: dict, media: str = "application/json") -> dict:
        return {"description": description, "content": {media: {"schema": schema}}}

    kinds = "; ".join(f"`/docs#problem-{slug}`: {title}" for slug, title in problem_types.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payrule",
            "version": __version__,
            "summary": "Payer policies as readable rules: decide claims over HTTP",
            "description": (
                "The decisions are exactly those `payrule check` prints for the same claims: the same objects, "
                "byte for byte, one per claim in input order. Every request is independent. Errors are RFC 9457 "
                f"problem objects (application/problem+json). Problem types for bodies: {kinds}; the others are "
                f"`about:blank`. Bodies over {max_body} bytes are refused (413)."
            ),
        },
        "paths": {
            "/v1/check": {"post": {
                "operationId": "check",
                "summary": "Decide claims",
                "description": (
                    "The body is a JSON object `{\"claims\": [...], \"history\": [...]}` (history optional: earlier "
                    "claims that count as already paid, as `payrule check --history`), or a claims file in the "
                    "format its Content-Type names: NDJSON (application/x-ndjson), CSV (text/csv), X12 837P "
                    "(application/edi-x12) or FHIR R4 (application/fhir+json: a Bundle or NDJSON of Claims). "
                    "A claim that cannot be read is an error object among the decisions (status 200); its "
                    "`input_line` is its position in `claims` counted from 1, or its line in a claims file. "
                    "Send `Accept: application/fhir+json` to get FHIR ClaimResponses instead."
                ),
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}},
                    "application/x-ndjson": {"schema": {"type": "string", "description": "one claim object a line"}},
                    "text/csv": {"schema": {"type": "string", "description": "one row per claim line"}},
                    "application/edi-x12": {"schema": {"type": "string", "description": "an X12 837P interchange"}},
                    "application/fhir+json": {"schema": {"type": "object", "description": "a FHIR R4 Bundle of Claims"}},
                }},
                "responses": {
                    "200": {"description": "One decision or error object per claim, in input order", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CheckResponse"}},
                        "application/fhir+json": {"schema": {"type": "object",
                                                             "description": "FHIR R4 ClaimResponses"}}}},
                    "400": problem("The body is not JSON (with the line, column and byte offset where it breaks), "
                                   "not a check request, or has a history claim or a claims file that cannot be read"),
                    "413": problem(f"The body is larger than {max_body} bytes; the rest is not read"),
                    "415": problem("The Content-Type is not one the server reads"),
                },
            }},
            "/v1/policies": {"get": {
                "operationId": "listPolicies",
                "summary": "The payers and policies",
                "description": "Every loaded policy: its payer and aliases, rules, sources and effective dates.",
                "responses": {"200": ok("The catalog", {"$ref": "#/components/schemas/Catalog"})},
            }},
            "/v1/policies/{policy_id}": {"get": {
                "operationId": "explainPolicy",
                "summary": "A policy in plain English",
                "description": ("What `payrule explain` prints for the policy. `Accept: text/plain` (or text/markdown) "
                                "gets the text alone."),
                "parameters": [
                    {"name": "policy_id", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "a policy id, as listed by /v1/policies"},
                    {"name": "format", "in": "query", "schema": {"enum": ["text", "markdown"], "default": "text"},
                     "description": "as `payrule explain --format`"},
                    {"name": "own", "in": "query", "schema": {"type": "boolean", "default": False},
                     "description": "only the policy's own rules and sources (`--own`)"},
                    {"name": "date", "in": "query", "schema": {"type": "string", "format": "date"},
                     "description": "only the rules in force on this date of service (`--date`)"},
                ],
                "responses": {
                    "200": {"description": "The explanation", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Explanation"}},
                        "text/plain": {"schema": {"type": "string"}}}},
                    "400": problem("A query parameter is not valid"),
                    "404": problem("No policy has this id"),
                },
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "Up, with its policies loaded",
                "responses": {"200": ok("Serving", {"type": "object", "properties": {
                    "status": {"const": "ok"}, "policies": {"type": "integer"},
                    "payers": {"type": "array", "items": {"type": "string"}}}})},
            }},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                      "responses": {"200": ok("OpenAPI 3.1", {"type": "object"})}}},
            "/docs": {"get": {"operationId": "docs", "summary": "This document as a web page",
                              "responses": {"200": ok("HTML", {"type": "string"}, "text/html")}}},
        },
        # The problem types of this API, by the anchor of their `type` (`/docs#problem-SLUG`): the docs page
        # lists them under those anchors.
        "x-problem-types": dict(problem_types),
        "components": {"schemas": {
            "CheckRequest": {"type": "object", "required": ["claims"], "additionalProperties": False, "properties": {
                "claims": {"type": "array", "items": {"$ref": "#/components/schemas/Claim"}},
                "history": {"type": "array", "items": {"$ref": "#/components/schemas/Claim"},
                            "description": "earlier claims that count as already paid; not decided, not returned; "
                                           "one that cannot be read makes the request a 400"},
            }},
            "Claim": claim,
            "Line": line,
            "CheckResponse": {"type": "object", "required": ["decisions"], "properties": {
                "decisions": {"type": "array", "items": {"oneOf": [
                    {"$ref": "#/components/schemas/Decision"}, {"$ref": "#/components/schemas/ClaimError"}]}}}},
            "Decision": {"type": "object", "required": ["claim_id", "decision", "lines"], "properties": {
                "claim_id": {"type": "string"},
                "decision": {"enum": ["approve", "review", "deny"]},
                "lines": {"type": "array", "items": {"type": "object", "properties": {
                    "line": {"type": "integer"}, "code": {"type": "string"},
                    "decision": {"enum": ["approve", "review", "deny"]},
                    "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}}}}}}},
            "Reason": {"type": "object", "required": ["policy", "rule", "outcome", "message", "source"], "properties": {
                "policy": {"type": "string"}, "rule": {"type": "string"}, "outcome": {"enum": ["review", "deny"]},
                "message": {"type": "string"}, "source": {"type": "string", "description": "policy file:line"},
                "carc": {"type": "string"}, "rarc": {"type": "string"}}},
            "ClaimError": {"type": "object", "required": ["claim_id", "error", "input_line"], "properties": {
                "claim_id": {"type": ["string", "null"]}, "error": {"type": "string"},
                "input_line": {"type": "integer"}}},
            "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                "type": {"type": "string", "format": "uri-reference"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "line": {"type": "integer", "description": "malformed JSON: the line where it breaks (from 1)"},
                "column": {"type": "integer", "description": "... and the column (bytes, from 1)"},
                "offset": {"type": "integer", "description": "... and the byte offset (from 0)"},
                "pointer": {"type": "string", "description": "a history claim: its JSON pointer (/history/2)"}}},
            "Catalog": {"type": "object", "properties": {
                "payers": {"type": "array", "items": {"type": "string"}},
                "policies": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "title": {"type": "string"}, "payer": {"type": ["string", "null"]},
                    "aliases": {"type": "array", "items": {"type": "string"}}, "path": {"type": "string"},
                    "digest": {"type": "string"}, "includes": {"type": "array", "items": {"type": "string"}},
                    "effective": {"$ref": "#/components/schemas/Effective"},
                    "sources": {"type": "array", "items": {"type": "object"}},
                    "rules": {"type": "array", "items": {"type": "object"}}}}}}},
            "Effective": {"type": "object", "description": "in force from and until (inclusive); null: open",
                          "properties": {"from": {"type": ["string", "null"], "format": "date"},
                                         "until": {"type": ["string", "null"], "format": "date"}}},
            "Explanation": {"type": "object", "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "payer": {"type": ["string", "null"]},
                "format": {"enum": ["text", "markdown"]}, "own": {"type": "boolean"},
                "date": {"type": ["string", "null"], "format": "date"}, "explanation": {"type": "string"}}},
        }},
    }


# ---- /docs ------------------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; } code, pre { font-family: ui-monospace, monospace; }
pre { background: #f6f6f6; padding: .75rem; overflow-x: auto; font-size: 13px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; }
.method { font-weight: bold; text-transform: uppercase; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def docs_html(doc: dict) -> str:
    """The document as one self-contained HTML page: each operation, its parameters, bodies and responses,
    the problem types (with the anchors their `type` points at), then every schema as JSON."""
    info = doc["info"]
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(info['title'])} API</title><style>{_STYLE}</style></head><body>",
           f"<h1>{_e(info['title'])} {_e(info['version'])}: the HTTP API</h1>",
           f"<p>{_e(info['description'])}</p>",
           '<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>']
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            out.append(f'<h2 id="{_e(op["operationId"])}"><span class="method">{_e(method)}</span> <code>{_e(path)}</code></h2>')
            out.append(f"<p><strong>{_e(op['summary'])}</strong></p>")
            if "description" in op:
                out.append(f"<p>{_e(op['description'])}</p>")
            if op.get("parameters"):
                out.append("<table><tr><th>parameter</th><th>in</th><th>schema</th><th>meaning</th></tr>")
                for p in op["parameters"]:
                    out.append(f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
                               f"<td><code>{_e(json.dumps(p['schema']))}</code></td><td>{_e(p.get('description', ''))}</td></tr>")
                out.append("</table>")
            if "requestBody" in op:
                out.append("<p>Request body: " + ", ".join(f"<code>{_e(m)}</code>" for m in op["requestBody"]["content"]) + "</p>")
            out.append("<table><tr><th>status</th><th>meaning</th><th>content</th></tr>")
            for status, r in op["responses"].items():
                media = ", ".join(f"<code>{_e(m)}</code>" for m in r.get("content", {}))
                out.append(f"<tr><td>{_e(status)}</td><td>{_e(r['description'])}</td><td>{media}</td></tr>")
            out.append("</table>")
    out.append('<h2 id="problems">Problems</h2>')
    out.append("<p>Every error is an RFC 9457 problem object: <code>type</code>, <code>title</code>, "
               "<code>status</code>, <code>detail</code>. Errors that HTTP names fully (404, 405, 413, 415, 500) have "
               "type <code>about:blank</code>; the body problems have these types:</p><dl>")
    for anchor, title in doc.get("x-problem-types", {}).items():
        out.append(f'<dt id="problem-{_e(anchor)}"><code>/docs#problem-{_e(anchor)}</code></dt><dd>{_e(title)}</dd>')
    out.append("</dl>")
    out.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in doc["components"]["schemas"].items():
        out.append(f'<h3 id="schema-{_e(name)}">{_e(name)}</h3><pre>{_e(json.dumps(schema, indent=2))}</pre>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"

