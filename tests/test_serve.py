"""`payrule serve` (issue 14 item 4): the real server, started as a process on a free port, answered over
real HTTP (httpx), its decisions compared with what `payrule check` prints for the same claims; every
problem response; independence of concurrent requests; several workers; the curl examples of
docs/server.md run against it. The in-process tests (starlette.testclient) cover what needs no socket.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from conftest import CONFORMANCE, ROOT, claim, needs_conformance, tpi

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from payrule import PolicySet  # noqa: E402
from payrule.serve.app import create_app  # noqa: E402

PAYRULE = [str(Path(sys.executable).with_name("payrule"))] if Path(sys.executable).with_name("payrule").exists() \
    else [sys.executable, "-m", "payrule"]
CORPUS = ROOT / "tests" / "claims_corpus"
SERVER_DOC = ROOT / "docs" / "server.md"
JSON_TYPE = {"Content-Type": "application/json"}
NDJSON_TYPE = {"Content-Type": "application/x-ndjson"}


# ---- a real server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`payrule serve ARGS --port FREE` from the repository root, until stop()."""

    def __init__(self, *args: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen([*PAYRULE, "serve", "--port", str(self.port), *args], cwd=ROOT,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"payrule serve exited {self.proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"payrule serve did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(log=tmp_path_factory.mktemp("serve") / "server.log")
    try:
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in srv.log.read_text(), srv.log.read_text()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def cli_check(*args: str | Path) -> str:
    """What `payrule check ARGS` prints (a real process, from the repository root)."""
    out = subprocess.run([*PAYRULE, "check", "-q", *map(str, args)], cwd=ROOT, capture_output=True)
    assert out.returncode in (0, 1), out.stderr.decode()
    return out.stdout.decode("utf-8")


def answer(cli_out: str) -> str:
    """The body the server answers with for these decisions: `payrule check`'s lines inside
    {"decisions": [...]}, one a line."""
    lines = [line for line in cli_out.split("\n") if line]
    return '{"decisions": [\n' + ",\n".join(lines) + "\n]}\n" if lines else '{"decisions": []}\n'


def envelope(claims_file: Path, history_file: Path | None = None) -> bytes | None:
    """The JSON body with a JSON Lines file's claims as they are written (so each claim is the same bytes
    and its position its line), or None when a line is blank or not JSON (it is sent as NDJSON then)."""
    def rows(path: Path) -> list[bytes] | None:
        data = path.read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for raw in lines:
            try:
                json.loads(raw)
            except ValueError:
                return None
        return lines

    claims = rows(claims_file)
    history = rows(history_file) if history_file is not None else []
    if claims is None or history is None:
        return None
    return b'{"claims": [' + b",\n".join(claims) + b'],\n "history": [' + b",\n".join(history) + b"]}"


def assert_problem(r, status: int, kind: str = "about:blank") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status and body["type"] == kind and body["detail"], body
    assert "Traceback" not in r.text
    return body


def assert_still_answers(http) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    r = http.post("/v1/check", json={"claims": [claim("ALIVE", tpi())]})
    assert r.status_code == 200 and r.json()["decisions"][0]["claim_id"] == "ALIVE"


# ---- decisions: the CLI's, over HTTP -----------------------------------------------------------

EXAMPLE_FILES = [ROOT / "examples" / "claims.jsonl", ROOT / "examples" / "with_errors.jsonl",
                 ROOT / "docs" / "examples" / "timeline" / "claims.jsonl",
                 ROOT / "docs" / "examples" / "acme" / "claims.jsonl", *sorted(CORPUS.glob("*.jsonl"))]
EXAMPLE_FILES = [p for p in EXAMPLE_FILES if p.is_file() and not p.name.startswith("history_")]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.relative_to(ROOT).as_posix() for p in EXAMPLE_FILES])
def test_ndjson_and_json_bodies_get_the_cli_decisions(http, path):
    want = answer(cli_check(path))
    r = http.post("/v1/check", content=path.read_bytes(), headers=NDJSON_TYPE)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text == want
    body = envelope(path)
    if body is not None:  # the same claims as a JSON body: the same bytes
        r = http.post("/v1/check", content=body, headers=JSON_TYPE)
        assert r.status_code == 200
        assert r.text == want


def test_history_in_the_body_counts_as_the_cli_history_file(http):
    claims, history = ROOT / "docs/examples/timeline/claims.jsonl", ROOT / "docs/examples/timeline/history.jsonl"
    want = answer(cli_check(claims, "--history", history))
    assert want != answer(cli_check(claims)), "the example's history should change a decision"
    r = http.post("/v1/check", content=envelope(claims, history), headers=JSON_TYPE)
    assert r.status_code == 200
    assert r.text == want


CSV_FILES = [ROOT / "docs/examples/csv/claims.csv", *sorted(p for p in CORPUS.glob("*.csv") if not p.name.startswith("history_"))]


@pytest.mark.parametrize("path", CSV_FILES, ids=[p.name for p in CSV_FILES])
def test_csv_body_gets_the_cli_decisions(http, path):
    r = http.post("/v1/check", content=path.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200
    assert r.text == answer(cli_check(path))


def _scenarios() -> list[Path]:
    folder = CONFORMANCE / "scenarios"
    return sorted(p for p in folder.glob("*") if p.suffix in (".jsonl", ".csv") and ".history." not in p.name) \
        if folder.is_dir() else []


@needs_conformance
@pytest.mark.parametrize("path", _scenarios(), ids=[p.stem for p in _scenarios()])
def test_conformance_scenarios_over_http(http, path):
    """The contract's worked examples, sent as a JSON body with their history (or as the file they are)."""
    history = path.with_name(path.stem + ".history.jsonl")
    history = history if history.is_file() else None
    want = answer(cli_check(path, *(["--history", history] if history else [])))
    body = envelope(path, history) if path.suffix == ".jsonl" else None
    if body is not None:
        r = http.post("/v1/check", content=body, headers=JSON_TYPE)
    elif history is None:
        media = "text/csv" if path.suffix == ".csv" else "application/x-ndjson"
        r = http.post("/v1/check", content=path.read_bytes(), headers={"Content-Type": media})
    else:
        pytest.skip("history with claims that cannot stand in a JSON body")
    assert r.status_code == 200
    assert r.text == want


def test_claims_given_as_objects_and_empty_bodies(http):
    r = http.post("/v1/check", json={"claims": []})
    assert r.status_code == 200 and r.text == '{"decisions": []}\n'
    r = http.post("/v1/check", content=b"", headers=NDJSON_TYPE)
    assert r.status_code == 200 and r.json() == {"decisions": []}
    # A claim that is not an object, or not valid, is an error object in its place (position from 1).
    r = http.post("/v1/check", json={"claims": [claim("G-1", tpi()), 5, {"claim_id": "B-1"}]})
    assert r.status_code == 200
    got = r.json()["decisions"]
    assert got[0]["claim_id"] == "G-1" and "decision" in got[0]
    assert got[1]["input_line"] == 2 and "error" in got[1]
    assert got[2] == {"claim_id": "B-1", "error": got[2]["error"], "input_line": 3} and "patient_id" in got[2]["error"]


def test_concurrent_requests_are_independent(server):
    """Requests for one patient, sent at once on many connections: each is decided alone (its own spacing
    and session counts), as `payrule check` decides a file holding just that claim."""
    claims = [claim(f"K-{n}", tpi(date=f"2025-03-{n + 1:02d}"), patient="P-SAME", payer="aetna") for n in range(8)]
    claims += [claim(f"M-{n}", tpi(date=f"2025-0{n + 1}-10"), patient="P-SAME", payer="medicare") for n in range(4)]
    together = answer(cli_check_objects(claims))
    want = {c["claim_id"]: answer(cli_check_objects([c])) for c in claims}
    assert together != "".join(want.values()), "deciding them together should differ: they share a patient"

    async def run() -> list[tuple[str, httpx.Response]]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            jobs = [claims[i % len(claims)] for i in range(240)]
            responses = await asyncio.gather(*(client.post("/v1/check", json={"claims": [c]}) for c in jobs))
            return [(c["claim_id"], r) for c, r in zip(jobs, responses)]

    for claim_id, r in asyncio.run(run()):
        assert r.status_code == 200
        assert r.text == want[claim_id], claim_id


def cli_check_objects(objs: list[dict]) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        f.write("".join(json.dumps(o) + "\n" for o in objs))
    try:
        return cli_check(f.name)
    finally:
        os.unlink(f.name)


# ---- problems ------------------------------------------------------------------------------------


def test_malformed_json_is_400_with_the_position(http):
    r = http.post("/v1/check", content=b'{"claims": [\n  {"claim_id": "C-1",}\n]}', headers=JSON_TYPE)
    body = assert_problem(r, 400, "/docs#problem-malformed-json")
    assert (body["line"], body["column"], body["offset"]) == (2, 22, 34), body
    assert "line 2, column 22" in body["detail"]
    r = http.post("/v1/check", content=b'{"claims": [1, 2', headers=JSON_TYPE)
    body = assert_problem(r, 400, "/docs#problem-malformed-json")
    assert body["offset"] == 16 and "ends before" in body["detail"]
    r = http.post("/v1/check", content=b'{"claims": [' + b"[" * 5000 + b"]" * 5000 + b"]}", headers=JSON_TYPE)
    assert_problem(r, 400, "/docs#problem-malformed-json")
    assert_still_answers(http)


@pytest.mark.parametrize("body", [b'{"claim": []}', b'[{"claim_id": "C-1"}]', b'{"claims": {}}', b"", b"  \n",
                                  b'{"claims": [], "histroy": []}', b'{"claims": [], "history": 3}'])
def test_a_body_that_is_not_a_check_request_is_400(http, body):
    assert_problem(http.post("/v1/check", content=body, headers=JSON_TYPE), 400, "/docs#problem-invalid-request")


def test_unreadable_history_is_400_as_the_cli_stops(http):
    for path in sorted(CORPUS.glob("history_*.jsonl")):
        cli = subprocess.run([*PAYRULE, "check", "examples/claims.jsonl", "--history", str(path)], cwd=ROOT,
                             capture_output=True)
        assert cli.returncode == 2
        body = envelope(ROOT / "examples/claims.jsonl", path)
        if body is None:  # a history line that is not JSON: then the body is not JSON either
            continue
        problem = assert_problem(http.post("/v1/check", content=body, headers=JSON_TYPE), 400,
                                 "/docs#problem-unreadable-history")
        why = cli.stderr.decode().split("cannot be read: ", 1)[1].strip()
        assert problem["detail"].endswith("cannot be read: " + why), (problem, why)
        assert problem["pointer"].startswith("/history/")


def test_body_over_the_limit_is_413_without_reading_it(tmp_path):
    srv = Server("--max-body", "64K", log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            big = json.dumps({"claims": [claim(f"C-{n}", tpi()) for n in range(400)]}).encode()
            assert len(big) > 64 * 1024
            body = assert_problem(http.post("/v1/check", content=big, headers=JSON_TYPE), 413)
            assert body["max_body"] == 64 * 1024
            # No Content-Length (chunked): refused once the bytes read pass the limit.
            def chunks():
                for _ in range(40):
                    yield b" " * 4096
            try:
                r = http.post("/v1/check", content=chunks(), headers=JSON_TYPE)
            except httpx.TransportError:  # the server may close before the client has sent it all
                pass
            else:
                assert_problem(r, 413)
            assert_still_answers(http)
        # A Content-Length over the limit is answered before the body is sent at all.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 50000000\r\n\r\n{")
            got = s.recv(65536)
            assert got.startswith(b"HTTP/1.1 413 "), got
            assert b"application/problem+json" in got and b"connection: close" in got.lower()
        # A client that goes away in the middle of its body hangs nothing.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"claims\": [")
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            assert_still_answers(http)
    finally:
        assert srv.stop() in (0, -signal.SIGTERM)  # uvicorn ends as the signal it was stopped with
    assert "Traceback" not in srv.log.read_text(), srv.log.read_text()


def test_unsupported_media_type_is_415(http):
    for media in ("text/plain", "application/xml", "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
        body = assert_problem(http.post("/v1/check", content=b'{"claims": []}', headers={"Content-Type": media}), 415)
        assert media.split(";")[0] in body["detail"] or "charset" in body["detail"]
    assert http.post("/v1/check", content=b'{"claims": []}',
                     headers={"Content-Type": "Application/JSON; charset=UTF-8"}).status_code == 200
    assert_still_answers(http)


def test_unknown_route_is_404_and_wrong_method_405(http):
    assert_problem(http.get("/v2/check"), 404)
    assert_problem(http.post("/nothing/here", json={}), 404)
    assert_problem(http.get("/v1/policies/no-such-policy"), 404)
    r = http.get("/v1/check")
    assert_problem(r, 405)
    assert r.headers["allow"] == "POST"
    r = http.delete("/v1/policies")
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"]
    assert_problem(http.put("/healthz"), 405)
    assert_still_answers(http)


def test_x12_body_gets_the_cli_decisions(http, tmp_path):
    x12 = pytest.importorskip("payrule.claims.x12")
    files = sorted(ROOT.glob("docs/examples/**/*.x12")) + sorted(ROOT.glob("docs/examples/**/*.837"))
    writer = getattr(x12, "write_x12", None)
    if not files and writer is not None:  # an interchange made from the example claims
        path = tmp_path / "claims.x12"
        objs = [json.loads(line) for line in (ROOT / "examples/claims.jsonl").read_text().splitlines()]
        out = writer(objs)
        path.write_bytes(out if isinstance(out, bytes) else out.encode())
        files = [path]
    if not files:
        pytest.skip("no X12 example to send")
    for path in files:
        r = http.post("/v1/check", content=path.read_bytes(), headers={"Content-Type": "application/edi-x12"})
        assert r.status_code == 200, r.text
        assert r.text == answer(cli_check(path))
    problem = assert_problem(http.post("/v1/check", content=b"ISA*not an interchange~",
                                       headers={"Content-Type": "application/edi-x12"}), 400,
                             "/docs#problem-unreadable-claims")
    assert "X12" in problem["detail"]


FHIR_BUNDLE = ROOT / "docs" / "examples" / "fhir" / "bundle.json"


def test_fhir_in_fhir_out(http):
    pytest.importorskip("payrule.claims.fhir")
    if not FHIR_BUNDLE.is_file():
        pytest.skip("no FHIR example")
    data = FHIR_BUNDLE.read_bytes()
    fhir_in = {"Content-Type": "application/fhir+json"}
    r = http.post("/v1/check", content=data, headers=fhir_in)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text == answer(cli_check(FHIR_BUNDLE))
    want = subprocess.run([*PAYRULE, "check", "-q", str(FHIR_BUNDLE), "--output-format", "fhir"], cwd=ROOT,
                          capture_output=True).stdout
    r = http.post("/v1/check", content=data, headers={**fhir_in, "Accept": "application/fhir+ndjson"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+ndjson"
    assert r.content == want
    r = http.post("/v1/check", content=data, headers={**fhir_in, "Accept": "application/fhir+json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json"
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [e["resource"] for e in bundle["entry"]] == [json.loads(line) for line in want.splitlines()]
    # JSON decisions when JSON is preferred
    r = http.post("/v1/check", content=data, headers={**fhir_in, "Accept": "application/json, application/fhir+json;q=0.5"})
    assert r.headers["content-type"] == "application/json"
    problem = assert_problem(http.post("/v1/check", content=b'{"resourceType": "Bundle", "entry": 5}', headers=fhir_in),
                             400, "/docs#problem-unreadable-claims")
    assert "FHIR" in problem["detail"]


# ---- several workers, and starting -------------------------------------------------------------


def test_two_workers_answer_and_stop_together(tmp_path):
    srv = Server("--workers", "2", log=tmp_path / "server.log")
    try:
        children = _children(srv.proc.pid)
        assert len(children) >= 2, children
        path = ROOT / "examples/claims.jsonl"
        want = answer(cli_check(path))

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
                return await asyncio.gather(*(client.post("/v1/check", content=path.read_bytes(), headers=NDJSON_TYPE)
                                              for _ in range(60)))

        assert all(r.status_code == 200 and r.text == want for r in asyncio.run(run()))
        with httpx.Client(base_url=srv.url) as http:
            assert_problem(http.get("/v1/check"), 405)
        # A worker that dies is replaced, and the server goes on answering meanwhile.
        os.kill(children[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while children[0] in _children(srv.proc.pid) or len(_children(srv.proc.pid)) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        with httpx.Client(base_url=srv.url) as http:
            for _ in range(20):
                assert_still_answers(http)
        children = _children(srv.proc.pid)
        # A second server on the same port is refused, not let in beside the first.
        second = subprocess.run([*PAYRULE, "serve", "--port", str(srv.port), "--workers", "2"], cwd=ROOT,
                                capture_output=True, timeout=60)
        assert second.returncode == 2 and b"already in use" in second.stderr, second.stderr
    finally:
        assert srv.stop() in (0, -signal.SIGTERM)  # uvicorn ends as the signal it was stopped with
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in children):
        assert time.monotonic() < deadline, "the workers outlived the server"
        time.sleep(0.1)
    assert "Traceback" not in srv.log.read_text(), srv.log.read_text()


def _children(pid: int) -> list[int]:
    """The worker processes of a server (multiprocessing's resource tracker left out)."""
    try:
        pids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pytest.skip("no /proc/PID/task/PID/children here")
    out = []
    for child in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes() and _state(child) != "Z":
                out.append(child)
        except OSError:
            pass
    return out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_policy_error_at_start_is_exit_2_with_the_diagnostics(workers):
    out = subprocess.run([*PAYRULE, "serve", "--port", str(free_port()), "--workers", workers,
                          "--no-shipped", "--policies", "docs/examples/broken"],
                         cwd=ROOT, capture_output=True, timeout=60)
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "error[PR" in err and "trigger_points.policy:" in err and "Traceback" not in err
    missing = subprocess.run([*PAYRULE, "serve", "--policies", "no/such/folder"], cwd=ROOT, capture_output=True,
                             timeout=60)
    assert missing.returncode == 2 and b"PR005" in missing.stderr and b"Traceback" not in missing.stderr


# ---- the curl examples of docs/server.md -------------------------------------------------------

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->\s*$")


def doc_examples() -> list[tuple[int, list[str], list[str]]]:
    """(line, command lines, shown output) of each command in the page's blocks marked as run here."""
    lines = SERVER_DOC.read_text(encoding="utf-8").split("\n")
    out = []
    i, mark = 0, None
    while i < len(lines):
        m = _MARK.match(lines[i])
        if m:
            mark = m.group(1)
        elif _FENCE.match(lines[i]) and lines[i] != "```":
            j = i + 1
            while lines[j] != "```":
                j += 1
            if mark and "tests/test_serve.py runs it" in mark:
                body = lines[i + 1:j]
                assert body and body[0].startswith("$ ") and "curl " in body[0], \
                    f"docs/server.md:{i + 1}: not a `$ ... curl ...` block"
                k = 1  # the command goes on while a line ends in `\` or a quote is open
                while k < len(body) and (body[k - 1].endswith("\\") or not _closed(body[:k])):
                    k += 1
                out.append((i + 1, body[:k], body[k:]))
            mark, i = None, j
        elif lines[i].strip():
            mark = None
        i += 1
    return out


def _closed(cmd: list[str]) -> bool:
    return "\n".join(cmd).count("'") % 2 == 0


DOC_EXAMPLES = doc_examples()


@pytest.mark.parametrize("example", DOC_EXAMPLES, ids=[f"server.md:{n}" for n, _, _ in DOC_EXAMPLES])
def test_server_page_curl_examples(server, example, request):
    line, command, shown = example
    text = "\n".join(command)[2:].replace("localhost:8080", f"localhost:{server.port}")
    if "| jq" in text and shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    got = subprocess.run(["bash", "-c", text], cwd=ROOT, capture_output=True, env=env, timeout=60)
    assert got.returncode == 0, got.stderr
    printed = [l.rstrip("\r") for l in got.stdout.decode("utf-8").rstrip("\n").split("\n")]
    if not _same(shown, printed) and request.config.getoption("--update-golden"):
        page = SERVER_DOC.read_text(encoding="utf-8")
        old = "\n".join(command + shown) + "\n```"
        assert page.count(old) == 1, f"server.md:{line}: the block is not unique on the page"
        SERVER_DOC.write_text(page.replace(old, "\n".join(command + printed) + "\n```"), encoding="utf-8")
        return
    assert _same(shown, printed), f"server.md:{line}: the page shows\n" + "\n".join(shown) + "\n\ncurl prints\n" + \
        "\n".join(printed)


def _same(shown: list[str], printed: list[str]) -> bool:
    """Line for line, but a `date:` header line stands for any date."""
    if len(shown) != len(printed):
        return False
    return all(a == b or (a.startswith("date: ") and b.startswith("date: ")) for a, b in zip(shown, printed))


def test_the_page_has_curl_examples():
    assert len(DOC_EXAMPLES) >= 8


# ---- in-process: the app without a socket --------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():  # this Starlette wants httpx2 for its test client; httpx still works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(create_app(PolicySet.load()), raise_server_exceptions=False) as c:
        yield c


def test_policy_catalog_lists_every_policy(client):
    shipped = PolicySet.load()
    body = client.get("/v1/policies").json()
    assert body["payers"] == shipped.payers
    assert [p["id"] for p in body["policies"]] == sorted(shipped.policies)
    for entry in body["policies"]:
        model = shipped.policies[entry["id"]]
        assert [r["id"] for r in entry["rules"]] == [r.id for r in model.rules]
        assert [s["id"] for s in entry["sources"]] == [s[0] for s in model.sources]
        assert entry["payer"] == model.payer and entry["path"] == model.path
        for r, rule in zip(entry["rules"], model.rules):
            assert r["source"] == rule.source and r["outcome"] == rule.action
            assert r["effective"] == {"from": rule.start and rule.start.isoformat(),
                                      "until": rule.end and rule.end.isoformat()}
    dated = [r for p in body["policies"] for r in p["rules"] if r["effective"]["from"]]
    assert dated, "the shipped Medicare policy has rules in force from a date"


@pytest.mark.parametrize("query,flags", [("", []), ("?format=markdown", ["--format", "markdown"]),
                                          ("?own=true", ["--own"]), ("?date=2021-12-01", ["--date", "2021-12-01"])])
def test_explanation_is_payrule_explain(client, cli, query, flags):
    for policy_id, path in (("aetna-tpi", "policies/aetna/trigger_points.policy"),
                            ("medicare-tpi", "policies/medicare/trigger_points.policy")):
        want = cli("explain", ROOT / path, *flags)
        assert want.code == 0, want.err
        r = client.get(f"/v1/policies/{policy_id}{query}")
        assert r.status_code == 200
        assert r.json()["explanation"] == want.out
        r = client.get(f"/v1/policies/{policy_id}{query}", headers={"Accept": "text/plain"})
        assert r.text == want.out and r.headers["content-type"].startswith(("text/plain", "text/markdown"))


@pytest.mark.parametrize("query", ["?format=html", "?date=2025-13-01", "?own=maybe"])
def test_explanation_parameters_are_checked(client, query):
    assert_problem(client.get(f"/v1/policies/aetna-tpi{query}"), 400, "/docs#problem-invalid-parameter")


def test_openapi_document_and_docs_page(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/check", "/v1/policies", "/v1/policies/{policy_id}", "/healthz", "/openapi.json", "/docs"} <= set(doc["paths"])
    assert set(doc["paths"]["/v1/check"]["post"]["responses"]) == {"200", "400", "413", "415"}
    assert doc["components"]["schemas"]["Claim"]["required"] == ["claim_id", "patient_id", "payer", "lines"]
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in page.text
    for slug in doc["x-problem-types"]:  # every problem type points at an anchor of this page
        assert f'id="problem-{slug}"' in page.text
    assert "<script" not in page.text and "https://cdn" not in page.text


def test_an_unexpected_error_is_a_500_problem_without_a_traceback():
    class Exploding(dict):
        def __contains__(self, key):
            raise RuntimeError("boom")

    policies = PolicySet.load()
    policies.checkers = Exploding(policies.checkers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(create_app(policies), raise_server_exceptions=False) as c:
        r = c.post("/v1/check", json={"claims": [claim("C-1", tpi())]})
        body = assert_problem(r, 500)
        assert "boom" not in r.text
        assert body["title"] == "Internal Server Error"
        assert c.get("/healthz").status_code == 200


def test_accept_and_content_type_parsing():
    from payrule.serve.app import Problem, media_kind, response_format

    assert media_kind(None) == "json"
    assert media_kind(b"application/x-ndjson; charset=utf-8") == "jsonl"
    assert media_kind(b'TEXT/CSV; charset="UTF-8"') == "csv"
    assert media_kind(b"application/edi-x12") == "x12"
    with pytest.raises(Problem):
        media_kind(b"application/json; charset=utf-16")
    assert response_format(None) == "json"
    assert response_format(b"*/*") == "json"
    assert response_format(b"application/fhir+json") == "fhir"
    assert response_format(b"application/fhir+ndjson") == "fhir-ndjson"
    assert response_format(b"application/fhir+json;q=0") == "json"
    assert response_format(b"application/json;q=0.9, application/fhir+json") == "fhir"
    assert response_format(b"application/json, application/fhir+json;q=0.5") == "json"
