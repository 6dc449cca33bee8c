"""Load test of `payrule serve` (issue 14 item 4): a real HTTP client against a real running server.

    .venv/bin/python bench/load.py                     # about a minute: 1/16/64 clients, 1,000-claim requests
    .venv/bin/python bench/load.py --requests 4000     # a shorter smoke run
    .venv/bin/python bench/load.py --long              # also 100,000 requests at 64 clients, memory sampled

It generates claims with bench/generate.py, starts `payrule serve --workers 2` on a free port and drives it
with the lean keep-alive HTTP/1.1 client below (asyncio streams, one connection per simulated client,
requests pre-encoded, responses compared as bytes). Every response is checked against what `payrule check`
prints for the same claims (run once per request body beforehand): a single-claim request's claims are
given unique patients, so one CLI run over all of them gives each one's answer alone.

It prints, for 1, 16 and 64 concurrent clients, single-claim requests/s and p50/p99 latency; claims/s for
1,000-claim requests (with the history of their patients in the body); the server workers' RSS before and
after (and every 10,000 requests with --long); the CPU the client and the server used; and PASS/FAIL for
each target:

    >= 2,000 single-claim requests/s and p99 <= 50 ms at 64 clients, 2 workers
    >= 50,000 claims/s in 1,000-claim requests
    every response correct; server memory flat (RSS growth <= 10 MiB per worker after warm-up; with
    --long, <= 2 MiB per worker from 10,000 to 100,000 requests)

The client must not be the bottleneck, so it is measured too: the same client against a server that
answers every request with a canned response (`--client-only` runs just that). The machine is 2 shared
cores: the client, both workers and anything else running share them, so compare runs made under the same
load (the load averages are printed).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MIB = 1024 * 1024

TARGET_RPS = 2000  # single-claim requests/s at 64 clients, 2 workers
TARGET_P99 = 0.050  # seconds, at 64 clients
TARGET_CLAIMS_PER_S = 50_000  # in 1,000-claim requests
TARGET_RSS_GROWTH = 10 * MIB  # per worker, after warm-up, over the whole run
TARGET_STEADY_GROWTH = 2 * MIB  # per worker, over the 100,000 requests of --long
BATCH = 1000


def payrule_cmd() -> list[str]:
    exe = Path(PY).with_name("payrule")
    return [str(exe)] if exe.exists() else [PY, "-m", "payrule"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---- the data and the answers the CLI gives ----------------------------------------------------


@dataclass
class Work:
    """Pre-encoded requests and the exact response body each must get."""

    singles: list[tuple[bytes, bytes]] = field(default_factory=list)
    batches: list[tuple[bytes, bytes]] = field(default_factory=list)
    with_history: list[tuple[bytes, bytes]] = field(default_factory=list)  # the same, with their history


def cli_lines(claims: Path, history: Path | None = None) -> list[str]:
    cmd = payrule_cmd() + ["check", str(claims), "-q"] + (["--history", str(history)] if history else [])
    out = subprocess.run(cmd, capture_output=True, cwd=ROOT)
    if out.returncode not in (0, 1):
        sys.exit(f"payrule check failed ({out.returncode}): {out.stderr.decode()}")
    return [line for line in out.stdout.decode("utf-8").split("\n") if line]


def response_body(lines: list[str]) -> bytes:
    """What the server answers with for these CLI lines (app.render_decisions)."""
    if not lines:
        return b'{"decisions": []}\n'
    return ('{"decisions": [\n' + ",\n".join(lines) + "\n]}\n").encode("utf-8")


def request(port: int, body: bytes) -> bytes:
    head = (f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def prepare(tmp: Path, port: int, singles: int, batches: int) -> Work:
    """Claims from bench/generate.py: `singles` one-claim requests (unique patients and claim ids, so each
    decides alone as it does in one CLI run over all of them) and `batches` 1,000-claim requests of
    consecutive claims, alone and with their patients' history."""
    claims_file, history_file = tmp / "claims.jsonl", tmp / "history.jsonl"
    n = max(singles, batches * BATCH) + 2000
    subprocess.run([PY, str(HERE / "generate.py"), "--claims", str(n), "--out", str(claims_file),
                    "--history", str(history_file)], check=True, capture_output=True)
    objects = []
    for raw in claims_file.read_bytes().split(b"\n"):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue  # a broken line cannot stand in a JSON array; the NDJSON path is the CLI's own
        objects.append(obj)
    history = [json.loads(raw) for raw in history_file.read_bytes().split(b"\n") if raw.strip()]
    work = Work()

    one = []
    for i, obj in enumerate(objects[:singles]):
        if isinstance(obj, dict):
            obj = dict(obj)
            if isinstance(obj.get("patient_id"), str):
                obj["patient_id"] += f"~{i}"
            if isinstance(obj.get("claim_id"), str):
                obj["claim_id"] += f"~{i}"
        one.append(obj)
    path = tmp / "singles.jsonl"
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in one), encoding="utf-8")
    lines = cli_lines(path)
    assert len(lines) == len(one), (len(lines), len(one))
    for obj, line in zip(one, lines):
        got = json.loads(line)
        if "error" in got:  # alone, a claim is on input line 1
            got["input_line"] = 1
            line = json.dumps(got, ensure_ascii=False)
        body = json.dumps({"claims": [obj]}, ensure_ascii=False).encode("utf-8")
        work.singles.append((request(port, body), response_body([line])))

    for b in range(batches):
        part = objects[b * BATCH:(b + 1) * BATCH]
        patients = {o.get("patient_id") for o in part if isinstance(o, dict)}
        past = [h for h in history if h.get("patient_id") in patients]
        cpath, hpath = tmp / f"batch{b}.jsonl", tmp / f"batch{b}.history.jsonl"
        cpath.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in part), encoding="utf-8")
        hpath.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in past), encoding="utf-8")
        body = json.dumps({"claims": part}, ensure_ascii=False).encode("utf-8")
        work.batches.append((request(port, body), response_body(cli_lines(cpath))))
        body = json.dumps({"claims": part, "history": past}, ensure_ascii=False).encode("utf-8")
        work.with_history.append((request(port, body), response_body(cli_lines(cpath, hpath))))
    return work


# ---- the client ----------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    wrong: int = 0
    first_wrong: str | None = None
    wall: float = 0.0
    cpu: float = 0.0


async def _connection(port: int, pool: list[tuple[bytes, bytes]], jobs, stats: Stats) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    record = stats.latencies.append
    clock = time.perf_counter
    size = len(pool)
    try:
        for i in jobs:
            req, want = pool[i % size]
            t = clock()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            at = head.find(b"content-length:")
            if at < 0:
                at = head.lower().find(b"content-length:")
            end = head.find(b"\r\n", at)
            body = await reader.readexactly(int(head[at + 15:end]))
            record(clock() - t)
            if head[9:12] != b"200" or body != want:
                stats.wrong += 1
                if stats.first_wrong is None:
                    stats.first_wrong = f"request {i}: {head[:12]!r} {body[:300]!r}, expected {want[:300]!r}"
    finally:
        writer.close()


async def _drive(port: int, pool, total: int, clients: int) -> Stats:
    stats = Stats()
    jobs = iter(range(total))  # shared: each connection takes the next request number
    t, c = time.perf_counter(), time.process_time()
    await asyncio.gather(*(_connection(port, pool, jobs, stats) for _ in range(clients)))
    stats.wall, stats.cpu = time.perf_counter() - t, time.process_time() - c
    return stats


def drive(port: int, pool, total: int, clients: int) -> Stats:
    return _run(_drive(port, pool, total, clients))


def _run(coro):
    try:
        import uvloop  # the client's own loop, if installed: less of the machine for the client
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# ---- the canned server (for measuring the client) and the real one -----------------------------

_CANNED = r'''
import asyncio, sys
BODY = b'{"decisions": []}\n'
RESP = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY) + BODY
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            at = head.lower().find(b"content-length:")
            n = int(head[at + 15:head.find(b"\r\n", at)]) if at >= 0 else 0
            await reader.readexactly(n)
            writer.write(RESP)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
'''


def client_capacity(pool, total: int, clients: int) -> tuple[float, float]:
    """Requests/s and client CPU share of this client against a canned-response server."""
    port = free_port()
    proc = subprocess.Popen([PY, "-c", _CANNED, str(port)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        stats = drive(port, [(r, b'{"decisions": []}\n') for r, _ in pool], total, clients)
    finally:
        proc.terminate()
        proc.wait()
    return len(stats.latencies) / stats.wall, stats.cpu / stats.wall


class Server:
    """`payrule serve --workers N` on a free port, its log in a file."""

    def __init__(self, workers: int, log: Path, port: int):
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(payrule_cmd() + ["serve", "--port", str(port), "--workers", str(workers),
                                                      "--log-level", "warning"],
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
        self.workers = workers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited ({self.proc.returncode}):\n{log.read_text()}")
            if self._healthy() and len(self.worker_pids()) >= workers:
                return
            time.sleep(0.2)
        sys.exit(f"the server did not answer /healthz in 60 s:\n{log.read_text()}")

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        """The processes that serve: the workers (children running spawn_main), or the server itself."""
        if self.workers == 1:
            return [self.proc.pid]
        out = []
        for pid in _children(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                out.append(pid)
        return out

    def rss(self) -> list[int]:
        out = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) * 1024)
        return out

    def cpu(self) -> list[float]:
        """CPU seconds each serving process used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for pid in self.worker_pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        return out


    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_share(before: list[float], after: list[float], wall: float) -> str:
    """The serving processes' CPU over `wall` seconds, in all and each (100% = one core)."""
    each = [(b - a) / wall for a, b in zip(before, after)]
    return f"{sum(each):.0%} (" + "+".join(f"{e:.0%}" for e in each) + ")"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # no /proc/PID/task/PID/children: scan for the parent id
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d.name))
                except OSError:
                    pass
        return out


# ---- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=15_000, help="single-claim requests at each concurrency (default 15,000)")
    ap.add_argument("--batch-requests", type=int, default=60, help="1,000-claim requests (default 60)")
    ap.add_argument("--concurrency", default="1,16,64", help="concurrent clients (default 1,16,64)")
    ap.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    ap.add_argument("--long", action="store_true", help="also 100,000 requests at 64 clients, RSS every 10,000")
    ap.add_argument("--client-only", action="store_true", help="only measure the client against a canned server")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    port = free_port()
    print(f"load average {loadavg()}; {os.cpu_count()} cores; client loop: "
          f"{'uvloop' if _has('uvloop') else 'asyncio'}; server: {'httptools' if _has('httptools') else 'h11'}"
          f", {'uvloop' if _has('uvloop') else 'asyncio'}")
    with tempfile.TemporaryDirectory(prefix="payrule-load-") as d:
        tmp = Path(d)
        t = time.perf_counter()
        work = prepare(tmp, port, singles=500, batches=4)
        print(f"prepared {len(work.singles)} single-claim and {len(work.batches)} {BATCH}-claim requests with "
              f"their CLI answers in {time.perf_counter() - t:.1f} s")
        rate, share = client_capacity(work.singles, 20_000, 64)
        print(f"client alone (canned server, 64 connections): {rate:,.0f} requests/s, client using "
              f"{share:.0%} of a core")
        if args.client_only:
            return 0
        results = []
        server = Server(args.workers, tmp / "server.log", port)
        try:
            drive(port, work.singles, 4000, 64)  # warm-up: every worker sees both kinds of request
            drive(port, work.batches + work.with_history, 16, 8)
            rss0 = server.rss()
            print(f"server workers' RSS after warm-up: {_mib(rss0)}")
            wrong = 0
            print(f"\n{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'client CPU':>10}  "
                  "server CPU (each worker)  wrong")
            for clients in levels:
                total = args.requests if clients > 1 else max(1, args.requests // 3)
                c0 = server.cpu()
                s = drive(port, work.singles, total, clients)
                share = cpu_share(c0, server.cpu(), s.wall)
                rps = len(s.latencies) / s.wall
                wrong += s.wrong
                print(f"{clients:>7} {len(s.latencies):>9,} {rps:>8,.0f} {pct(s.latencies, .5) * 1000:>7.2f} "
                      f"{pct(s.latencies, .99) * 1000:>7.2f} {s.cpu / s.wall:>9.0%}   {share:<24} {s.wrong}")
                if s.first_wrong:
                    print("   first wrong:", s.first_wrong)
                results.append((clients, rps, pct(s.latencies, .99)))
            bclients = 4 * args.workers
            print()
            claims_per_s = 0.0
            for name, pool in (("", work.batches), (", with their history", work.with_history)):
                c0 = server.cpu()
                s = drive(port, pool, args.batch_requests, bclients)
                share = cpu_share(c0, server.cpu(), s.wall)
                rate = len(s.latencies) * BATCH / s.wall
                claims_per_s = claims_per_s or rate  # the target is for the claims alone
                wrong += s.wrong
                print(f"{BATCH}-claim requests{name}, {bclients} clients: {len(s.latencies)} requests, {rate:,.0f} claims/s, "
                      f"p50 {pct(s.latencies, .5) * 1000:.0f} ms, p99 {pct(s.latencies, .99) * 1000:.0f} ms, "
                      f"client CPU {s.cpu / s.wall:.0%}, server CPU {share}, wrong {s.wrong}")
                if s.first_wrong:
                    print("   first wrong:", s.first_wrong)
            samples = [rss0]
            if args.long:
                print("\n100,000 single-claim requests at 64 clients, RSS every 10,000:")
                for k in range(10):
                    s = drive(port, work.singles, 10_000, 64)
                    wrong += s.wrong
                    samples.append(server.rss())
                    print(f"  {(k + 1) * 10_000:>7,}: {_mib(samples[-1])}  ({len(s.latencies) / s.wall:,.0f} req/s, "
                          f"p99 {pct(s.latencies, .99) * 1000:.1f} ms, wrong {s.wrong})")
            rss1 = server.rss()
            print(f"server workers' RSS at the end: {_mib(rss1)}")
        finally:
            server.stop()
        print(f"load average {loadavg()}\n")
        at64 = [r for r in results if r[0] == 64]
        growth = max((b - a for a, b in zip(rss0, rss1)), default=0)
        # With --long, flat over the 100,000 requests: from the first sample (10,000 in) to the last.
        steady = max((b - a for a, b in zip(samples[1], samples[-1])), default=0) if len(samples) > 2 else None
        checks = [
            (f">= {TARGET_RPS:,} requests/s at 64 clients", at64 and at64[0][1] >= TARGET_RPS,
             f"{at64[0][1]:,.0f}" if at64 else "not run"),
            (f"p99 <= {TARGET_P99 * 1000:.0f} ms at 64 clients", at64 and at64[0][2] <= TARGET_P99,
             f"{at64[0][2] * 1000:.1f} ms" if at64 else "not run"),
            (f">= {TARGET_CLAIMS_PER_S:,} claims/s in {BATCH}-claim requests", claims_per_s >= TARGET_CLAIMS_PER_S,
             f"{claims_per_s:,.0f}"),
            ("every response is the CLI's", wrong == 0, f"{wrong} wrong"),
            (f"RSS flat (growth <= {TARGET_RSS_GROWTH // MIB} MiB a worker after warm-up)", growth <= TARGET_RSS_GROWTH,
             f"{growth / MIB:+.1f} MiB"),
        ]
        if steady is not None:
            checks.append((f"RSS flat over 100,000 requests (<= {TARGET_STEADY_GROWTH // MIB} MiB a worker, "
                           "10,000 to 100,000)", steady <= TARGET_STEADY_GROWTH, f"{steady / MIB:+.1f} MiB"))
        for name, ok, got in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {name}: {got}")
        return 0 if all(ok for _, ok, _ in checks) else 1


def _mib(values: list[int]) -> str:
    return ", ".join(f"{v / MIB:.1f} MiB" for v in values)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
