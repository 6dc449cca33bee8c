"""The HTTP JSON API of `payrule serve`, as a Starlette application around one loaded PolicySet.

    POST /v1/check                  claims in, one decision or error object per claim out
    GET  /v1/policies               the payers and policies: rules, sources, effective dates
    GET  /v1/policies/{policy_id}   a policy in plain English, as `payrule explain` says it
    GET  /healthz                   up and loaded
    GET  /openapi.json, /docs       the OpenAPI document and a plain HTML page of it

Why it is built this way:

- The decisions are `payrule check`'s, byte for byte: a body is read by the same readers (a JSON body's
  claims are handed to the JSON Lines reader one per row, as if they were the lines of a file), decided by
  `payrule.run.engine.decide` and written by `render_jsonl`, the function the CLI prints with. The response
  is those lines inside `{"decisions": [...]}`, one per line, so a client can compare them with the CLI's.
- Requests are independent: every request reads with its own `ReadSession` (the readers' memo tables), and
  the app holds only what was built at start - the PolicySet and pre-rendered documents, none of which a
  request changes.
- `POST /v1/check` is the hot path (thousands of requests a second on two workers), so it is a plain ASGI
  endpoint: no Request object, headers looked up once, the body read with a running size check (a body over
  the limit is refused without reading the rest), the JSON envelope decoded by msgspec with the claims left
  as raw bytes for the reader. Large bodies are decided on one thread of the worker's, one after another,
  so a big request does not hold the event loop away from the small ones (measured on one worker, two
  clients sending 1,000-claim requests and four sending single claims: the single-claim p99 was 26 ms with
  the thread and 95 ms without, and seven times as many were answered; the big ones lose no throughput).
- Every error is an RFC 9457 problem (`application/problem+json`), the router's 404 and 405 and an
  unexpected exception included; a traceback goes to the server's log, never to the client.
"""
from __future__ import annotations

import json
import re
from datetime import date
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payrule.api import PolicySet
from payrule.claims.readers import ClaimError, ReadSession, read_claims, read_jsonl_rows
from payrule.run.engine import Decided, decide, decision_json, render_jsonl
from payrule.serve import DEFAULT_MAX_BODY
from payrule.serve.openapi import docs_html, openapi_document

__all__ = ["create_app", "DEFAULT_MAX_BODY"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Bodies larger than this are decided on the app's one thread for big bodies (a 1,000-claim body is about
# 350 KB); smaller ones take less time than handing them to a thread would.
THREAD_ABOVE = 64 * 1024

JSON = b"application/json"
PROBLEM = b"application/problem+json"
FHIR = b"application/fhir+json"
FHIR_NDJSON = b"application/fhir+ndjson"

# Content-Type -> how the body is read. A JSON body is the envelope {"claims": [...], "history": [...]};
# the others are a claims file in that format, read as `payrule check` reads the file.
MEDIA_TYPES: dict[str, str] = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "text/csv": "csv",
    "application/edi-x12": "x12",
    "application/x12": "x12",
    "application/fhir+json": "fhir",
    "application/fhir+ndjson": "fhir",
}
_FORMAT_NAMES = {"jsonl": "JSON Lines", "csv": "CSV", "x12": "X12 837P", "fhir": "FHIR R4"}
_MEDIA_FAST = {k.encode(): v for k, v in MEDIA_TYPES.items()}
_MEDIA_FAST.update({k.encode() + b"; charset=utf-8": v for k, v in MEDIA_TYPES.items()})
_CHARSETS = ("utf-8", "utf8", "us-ascii")

# RFC 9110's names for the statuses this API answers with (Python's `http` module has older ones).
TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
          413: "Content Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error"}
# The problem types of a body that cannot be decided, each explained on the docs page (`/docs#...`);
# the other problems are plain HTTP ones (`about:blank`: the status and title say it all).
PROBLEM_TYPES = {
    "malformed-json": "The body is not JSON",
    "invalid-request": "The body is not a check request",
    "unreadable-history": "A history claim cannot be read",
    "unreadable-claims": "The body cannot be read as its format",
    "invalid-parameter": "A query parameter is not valid",
}


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON body. The claims stay raw bytes: they are read by the JSON Lines reader, which says what is
    wrong with a claim in the same words as `payrule check`. Unknown fields are refused, so a misspelt
    `history` is a 400 rather than history silently left out."""

    claims: list[msgspec.Raw]
    history: list[msgspec.Raw] = []


class _Objects(msgspec.Struct, forbid_unknown_fields=True):
    """The same body decoded by the json module first (see decode_envelope)."""

    claims: list[Any]
    history: list[Any] = []


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_encoder = msgspec.json.Encoder()


def _encode(obj: Any) -> bytes:
    """Compact JSON with a final newline, like every body this API sends (a terminal shows it cleanly)."""
    return _encoder.encode(obj) + b"\n"


_BYTE_AT = re.compile(r"\s*\(byte (\d+)\)$")


class Problem(Exception):
    """An RFC 9457 problem to answer with: `slug` names a type of PROBLEM_TYPES (None: about:blank);
    `extra` are its extension members (`line`, `column`, ...)."""

    def __init__(self, status: int, detail: str, slug: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(detail)
        self.status, self.detail, self.slug, self.headers, self.extra = status, detail, slug, headers or {}, extra

    def body(self) -> bytes:
        title = PROBLEM_TYPES[self.slug] if self.slug else TITLES.get(self.status, "Error")
        kind = f"/docs#problem-{self.slug}" if self.slug else "about:blank"
        return _encode({"type": kind, "title": title, "status": self.status, "detail": self.detail, **self.extra})


def create_app(policies: PolicySet, max_body: int = DEFAULT_MAX_BODY) -> Starlette:
    """The API around `policies` (loaded and compiled by the caller, once). `max_body`: the largest request
    body accepted, in bytes; a larger one is answered 413 without being read to its end."""
    api = _Api(policies, max_body)
    routes = [
        Route("/v1/check", _CheckEndpoint(api), methods=["POST"], name="check"),
        Route("/v1/policies", api.list_policies, methods=["GET"], name="policies"),
        Route("/v1/policies/{policy_id}", api.explain_policy, methods=["GET"], name="policy"),
        Route("/healthz", api.healthz, methods=["GET"], name="healthz"),
        Route("/openapi.json", api.openapi, methods=["GET"], name="openapi"),
        Route("/docs", api.docs, methods=["GET"], name="docs"),
    ]
    app = Starlette(routes=routes, exception_handlers={Problem: _http_problem, HTTPException: _http_problem,
                                                          Exception: _internal_problem})
    app.state.policies = policies
    app.state.max_body = max_body
    return app


# ---- POST /v1/check ----------------------------------------------------------------------------


class _CheckEndpoint:
    """POST /v1/check as a bare ASGI app (Starlette routes a class instance to it as is): see the module
    docstring for why."""

    __slots__ = ("api",)

    def __init__(self, api: _Api):
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self.api
        ctype = accept = length = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                ctype = value
            elif key == b"accept":
                accept = value
            elif key == b"content-length":
                length = value
        try:
            kind = media_kind(ctype)
            out = response_format(accept)
            if length is not None and length.isdigit() and int(length) > api.max_body:
                raise _too_large(api.max_body)
            body = await read_body(receive, api.max_body)
            if body is None:  # the client went away: nobody to answer
                return
            if len(body) > THREAD_ABOVE:
                media, payload = await anyio.to_thread.run_sync(api.check, body, kind, out, limiter=api.big)
            else:
                media, payload = api.check(body, kind, out)
            status = 200
            headers = [(b"content-type", media), (b"content-length", str(len(payload)).encode())]
        except Problem as p:
            status, payload = p.status, p.body()
            headers = [(b"content-type", PROBLEM), (b"content-length", str(len(payload)).encode())]
            headers += [(k.lower().encode(), v.encode()) for k, v in p.headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _too_large(limit: int) -> Problem:
    # The rest of the body is not read: the connection is closed after the answer.
    return Problem(413, f"the body is larger than this server accepts ({limit} bytes)",
                   headers={"connection": "close"}, max_body=limit)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when the client disconnected; raises a 413 Problem as soon as more
    than `limit` bytes have come (whatever the Content-Length said), without reading further."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def media_kind(content_type: bytes | None) -> str:
    """How to read a body of this Content-Type (MEDIA_TYPES; none given: JSON); 415 for any other type or
    a charset other than UTF-8."""
    if content_type is None:
        return "json"
    kind = _MEDIA_FAST.get(content_type)
    if kind is not None:
        return kind
    text = content_type.decode("latin-1")
    mime, _, params = text.partition(";")
    kind = MEDIA_TYPES.get(mime.strip().lower())
    if kind is None:
        raise Problem(415, f"cannot read a body of type {mime.strip() or '(empty)'}; send application/json "
                           '({"claims": [...]}) or claims as application/x-ndjson, text/csv, application/edi-x12 or '
                           "application/fhir+json (all: accept)", accept=list(MEDIA_TYPES))
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _CHARSETS:
            raise Problem(415, f"cannot read a body in charset {value.strip()}; send UTF-8")
    return kind


def response_format(accept: bytes | None) -> str:
    """What to answer a check with: "json" (the decisions), or FHIR ClaimResponses when the client names
    a FHIR type in Accept with a quality at least that of application/json: "fhir" (application/fhir+json,
    a Bundle) or "fhir-ndjson" (application/fhir+ndjson, one per line as `payrule check --output-format
    fhir` writes them). Any other Accept gets the decisions as JSON."""
    if accept is None or b"fhir" not in accept:
        return "json"
    q = {"application/fhir+json": 0.0, "application/fhir+ndjson": 0.0, "application/json": 0.0}
    for part in accept.decode("latin-1").split(","):
        mime, *params = part.split(";")
        mime = mime.strip().lower()
        if mime not in q:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        q[mime] = max(q[mime], weight)
    best = max(q["application/fhir+json"], q["application/fhir+ndjson"])
    if best <= 0 or best < q["application/json"]:
        return "json"
    return "fhir" if q["application/fhir+json"] >= q["application/fhir+ndjson"] else "fhir-ndjson"


# ---- the app's state: built once, read by every request -----------------------------------------


class _Api:
    """The loaded policies and what is rendered from them at start. Nothing here changes after __init__."""

    def __init__(self, policies: PolicySet, max_body: int):
        self.policies = policies
        self.checkers: dict[str, Any] = policies.checkers  # Checker or Versions: decide() takes both
        self.keep_extra = policies.reads_extra
        self.max_body = max_body
        # One thread decides the large bodies, one after another: the event loop thread goes on answering
        # small requests in the meantime, and big ones do not take the GIL from each other.
        self.big = anyio.CapacityLimiter(1)
        catalog = policy_catalog(policies)
        self.catalog = _encode(catalog)
        self.health = _encode({"status": "ok", "policies": len(catalog["policies"]), "payers": policies.payers})
        document = openapi_document(max_body, PROBLEM_TYPES)
        self.openapi_json = _encode(document)
        self.docs_page = docs_html(document).encode("utf-8")

    # -- deciding (plain function: runs on the event loop or a worker thread)

    def check(self, body: bytes, kind: str, out: str = "json") -> tuple[bytes, bytes]:
        """(Content-Type, payload) for a check request's body read as `kind` (MEDIA_TYPES), answered as `out`
        (response_format); raises Problem for a body that cannot be decided at all. Claims that cannot be
        read are error objects among the decisions, as in the CLI."""
        session = ReadSession(keep_extra=self.keep_extra)  # this request's own memo tables
        history: list = []
        if kind == "json":
            envelope = decode_envelope(body)
            if envelope.history:
                history = read_history_rows(envelope.history, session)
            records = list(read_jsonl_rows([bytes(c) for c in envelope.claims], False, 0, session=session))
        else:
            records = read_body_claims(body, kind, session)
        decided = decide(self.checkers, records, history)
        if out != "json":
            lines = fhir_responses(decided, records)
            if out == "fhir-ndjson":
                return FHIR_NDJSON, b"".join(lines)
            return FHIR, fhir_bundle(lines)
        return JSON, render_decisions(decided)

    # -- the other endpoints (Starlette request/response: not the hot path)

    async def list_policies(self, request: Request) -> Response:
        return Response(self.catalog, media_type="application/json")

    async def healthz(self, request: Request) -> Response:
        return Response(self.health, media_type="application/json")

    async def openapi(self, request: Request) -> Response:
        return Response(self.openapi_json, media_type="application/json")

    async def docs(self, request: Request) -> Response:
        return Response(self.docs_page, media_type="text/html; charset=utf-8")

    async def explain_policy(self, request: Request) -> Response:
        policy_id = request.path_params["policy_id"]
        model = self.policies.policies.get(policy_id)
        if model is None:
            raise Problem(404, f"no policy {policy_id!r}; the policies are " + ", ".join(sorted(self.policies.policies)))
        query = request.query_params
        fmt = query.get("format", "text")
        if fmt not in ("text", "markdown"):
            raise Problem(400, f"format must be text or markdown, not {fmt!r}", "invalid-parameter", parameter="format")
        own = query.get("own", "false").lower()
        if own not in ("true", "false", "1", "0"):
            raise Problem(400, f"own must be true or false, not {own!r}", "invalid-parameter", parameter="own")
        on = None
        if "date" in query:
            try:
                on = date.fromisoformat(query["date"])
            except ValueError:
                raise Problem(400, f"date must be a date (YYYY-MM-DD), not {query['date']!r}", "invalid-parameter",
                              parameter="date") from None
        # Rendering a policy takes a few milliseconds: on a thread, off the event loop.
        text = await run_in_threadpool(explanation, model, fmt, own in ("true", "1"), on)
        accept = request.headers.get("accept", "")
        if "text/plain" in accept or "text/markdown" in accept:
            media = "text/markdown" if fmt == "markdown" else "text/plain"
            return Response(text.encode("utf-8"), media_type=f"{media}; charset=utf-8")
        return Response(_encode({"id": model.id, "title": model.title, "payer": model.payer, "format": fmt,
                                 "own": own in ("true", "1"), "date": on.isoformat() if on else None,
                                 "explanation": text}), media_type="application/json")


def explanation(model: Any, fmt: str, own: bool, on: date | None) -> str:
    """What `payrule explain POLICY [--format F] [--own] [--date D]` prints for one policy."""
    from payrule.tools.explain import render_policy

    return render_policy(model, fmt, own_only=own, on=on).rstrip("\n") + "\n"


# ---- reading and writing -------------------------------------------------------------------------


def decode_envelope(body: bytes) -> _Envelope:
    """The JSON body's claims and history; a 400 Problem saying where the JSON breaks (line, column and
    byte offset) or what is missing."""
    offset0 = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    if offset0:
        body = body[3:]
    if not body.strip():
        raise Problem(400, 'the body is empty; send {"claims": [...]}', "invalid-request")
    try:
        return _decode_envelope(body)
    except msgspec.ValidationError as exc:
        raise Problem(400, f"{_lower_first(str(exc))}; the body must be an object "
                           '{"claims": [...], "history": [...]} (history optional), or send claims as NDJSON '
                           "with Content-Type application/x-ndjson", "invalid-request") from None
    except msgspec.DecodeError as exc:
        fallback = _stdlib_envelope(body)
        if fallback is not None:
            return fallback
        message = str(exc)
        m = _BYTE_AT.search(message)
        if m is not None:
            offset = int(m.group(1))
            reason = message[:m.start()].removeprefix("JSON is malformed: ")
        else:  # "Input data was truncated"
            offset, reason = len(body), "the JSON ends before it is complete"
        line = body.count(b"\n", 0, offset) + 1
        column = offset - (body.rfind(b"\n", 0, offset) + 1) + 1
        raise Problem(400, f"the body is not JSON: {reason} at line {line}, column {column} (byte {offset + offset0})",
                      "malformed-json", line=line, column=column, offset=offset + offset0) from None
    except RecursionError:
        raise Problem(400, "the body is not JSON that can be read: it is nested too deeply", "malformed-json") from None


def _no_constant(word: str) -> None:
    raise ValueError(f"{word} is not JSON")


def _stdlib_envelope(body: bytes) -> _Envelope | None:
    """The envelope of a body msgspec refuses but the json module reads - a string with an unpaired surrogate
    escape (`"\\ud800"`), which JSON Lines readers take as a claim that cannot be read, not as a broken
    file - with each claim written back as JSON (ASCII, so the escape stays one), for the reader to say what
    is wrong with it in the CLI's words; None when the json module cannot read it either."""
    try:
        decoded = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    try:
        objects = msgspec.convert(decoded, _Objects)
    except msgspec.ValidationError:
        return None  # msgspec's own message says where
    return _Envelope([msgspec.Raw(json.dumps(c).encode("ascii")) for c in objects.claims],
                     [msgspec.Raw(json.dumps(h).encode("ascii")) for h in objects.history])


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def read_history_rows(rows: Iterable[msgspec.Raw], session: ReadSession) -> list:
    """The history claims of a JSON body; any that cannot be read makes the request a 400, as an unreadable
    history file makes `payrule check --history` stop (exit 2)."""
    out = []
    for rec in read_jsonl_rows([bytes(r) for r in rows], True, 0, session=session):
        if isinstance(rec, ClaimError):
            n = rec.input_line - 1
            raise Problem(400, f"history[{n}]: history claim {json.dumps(rec.claim_id)} cannot be read: {rec.error}",
                          "unreadable-history", pointer=f"/history/{n}")
        out.append(rec)
    return out


def read_body_claims(body: bytes, kind: str, session: ReadSession) -> list:
    """The claims of a body that is a claims file (NDJSON, CSV, X12, FHIR): the CLI's reader for the format.
    X12 and FHIR readers are imported only when such a body comes."""
    from payrule.claims.formats import FormatError

    try:
        return read_claims(body, "<request>", session=session, fmt=kind)
    except FormatError as exc:
        raise Problem(400, f"the body cannot be read as {_FORMAT_NAMES[kind]}: {exc}", "unreadable-claims") from None
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("payrule.claims."):
            raise Problem(415, f"this server cannot read {_FORMAT_NAMES[kind]} (no {exc.name})") from None
        raise


def render_decisions(decided: Iterable[Decided | ClaimError]) -> bytes:
    """`{"decisions": [...]}` with each object exactly the line `payrule check` prints for it, one a line."""
    lines = [text[:-1] for text in render_jsonl(decided)]
    if not lines:
        return b'{"decisions": []}\n'
    return ('{"decisions": [\n' + ",\n".join(lines) + "\n]}\n").encode("utf-8")


def fhir_responses(decided: list[Decided | ClaimError], records: list) -> list[bytes]:
    """The decisions as FHIR ClaimResponses (`payrule.claims.fhir`), one NDJSON line each, exactly what
    `payrule check --output-format fhir` writes: each names its claim's patient, payer and dates."""
    try:
        from payrule.claims.fhir import render_claim_responses
    except ImportError:
        raise Problem(406, "this server cannot write FHIR ClaimResponses; accept application/json") from None
    claims = {r.claim_id: r for r in records if not isinstance(r, ClaimError)}
    return list(render_claim_responses((decision_json(d) for d in decided), claims))


def fhir_bundle(lines: list[bytes]) -> bytes:
    """ClaimResponses (NDJSON lines) as one FHIR Bundle of type collection, each entry's resource the line
    as it is, one entry a line."""
    if not lines:
        return b'{"resourceType": "Bundle", "type": "collection", "entry": []}\n'
    entries = b",\n".join(b'{"resource": ' + line.rstrip(b"\n") + b"}" for line in lines)
    return b'{"resourceType": "Bundle", "type": "collection", "entry": [\n' + entries + b"\n]}\n"


# ---- catalog --------------------------------------------------------------------------------------


def policy_catalog(policies: PolicySet) -> dict:
    """GET /v1/policies: the payers, and every policy with its rules, sources and effective dates."""
    return {"payers": policies.payers, "policies": [_policy_entry(p) for _, p in sorted(policies.policies.items())]}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _policy_entry(p: Any) -> dict:
    docs = {d.id: d for d in p.documents}
    sources = []
    for sid, text, declared in p.sources:
        doc = docs.get(sid)
        sources.append({"id": sid, "text": text, "policy": declared,
                        "document": doc.document if doc else None, "url": doc.url if doc else None,
                        "effective": _iso(doc.effective) if doc else None, "note": doc.note if doc else None})
    rules = [{"id": r.id, "policy": r.policy, "outcome": r.action, "scope": r.scope, "source": r.source,
              "cite": r.cite, "effective": {"from": _iso(r.start), "until": _iso(r.end)},
              "carc": r.carc, "rarc": r.rarc} for r in p.rules]
    return {"id": p.id, "title": p.title, "payer": p.payer, "aliases": list(p.aliases), "path": p.path,
            "digest": p.digest, "includes": list(p.includes), "effective": {"from": _iso(p.start), "until": _iso(p.end)},
            "sources": sources, "rules": rules}


# ---- problems from Starlette itself ----------------------------------------------------------------


def problem_response(p: Problem) -> Response:
    return Response(p.body(), status_code=p.status, headers=p.headers, media_type="application/problem+json")


async def _http_problem(request: Request, exc: Exception) -> Response:
    """The router's 404 and 405 (and a Problem raised by an endpoint) as problem JSON."""
    if isinstance(exc, Problem):
        return problem_response(exc)
    assert isinstance(exc, HTTPException)
    path, method = request.url.path, request.method
    if exc.status_code == 404:
        detail = f"no endpoint at {path}; the endpoints are listed at /docs"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{method} is not allowed on {path}; use {allowed}"
    else:
        detail = exc.detail
    return problem_response(Problem(exc.status_code, detail, headers=dict(exc.headers or {})))


async def _internal_problem(request: Request, exc: Exception) -> Response:
    """An unexpected exception: a 500 problem for the client (the traceback goes to the server's log)."""
    if isinstance(exc, Problem):
        return problem_response(exc)
    return problem_response(Problem(500, "the server failed on this request; the details are in its log"))
