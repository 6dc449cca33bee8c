"""`payrule serve`: the policies behind an HTTP JSON API (docs/server.md).

The policies are read as every command reads them (`--policies`, `--no-shipped`, `--replace`:
`_common.load_policies`, so a decision's `source` names a file as `payrule check` does), loaded and
compiled here first: a policy error stops the command with its diagnostics (exit 2, as `payrule check`)
before any server starts. With one worker that PolicySet is served as it is; with several, each worker
is a fresh interpreter that builds its app with `app_from_environment` (the policy options and the body
limit are handed over in one environment variable) and loads the policies once, at its start.
Starlette and uvicorn are imported only in `run` and the workers, so the other commands do not need the
`serve` extra.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re

from payrule.cli.commands._common import add_policy_arguments, load_policies, usage_error

NAME = "serve"
HELP = "answer claims over HTTP: a JSON API (POST /v1/check)"
DESCRIPTION = (
    "Serve the policies as an HTTP JSON API: POST /v1/check decides claims exactly as `payrule check` does; "
    "GET /v1/policies lists them, GET /v1/policies/ID explains one; /healthz, /openapi.json and /docs. "
    "The policies are loaded once, at start."
)

_SIZE = re.compile(r"(?i)\s*([0-9]+)\s*([KMG]?)i?B?\s*")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _size(text: str) -> int:
    m = _SIZE.fullmatch(text)
    if not m or int(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (10485760, 512K, 10M)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def add_arguments(s) -> None:
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=_port, default=8080, help="port to listen on (default 8080)")
    s.add_argument("--workers", type=_count, default=1, metavar="N",
                   help="worker processes (default 1); each loads the policies and decides on its own core")
    add_policy_arguments(s)
    s.add_argument("--max-body", type=_size, default=None, metavar="BYTES",
                   help="largest request body accepted (default 10M; K, M and G suffixes are 1024s)")
    s.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs time)")
    s.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                   help="uvicorn's log level (default info)")


# How `payrule serve --workers N` hands its settings to the worker processes: one JSON object with the
# policy options (as parsed) and the body limit.
ENV_SETTINGS = "PAYRULE_SERVE_SETTINGS"
_POLICY_OPTIONS = ("policies", "no_shipped", "replace")


def run(args) -> int:
    try:
        import uvicorn

        from payrule.serve.app import create_app
    except ImportError as exc:  # starlette or uvicorn missing
        return usage_error(f"payrule serve needs the serve extra ({exc.name} is missing): pip install 'payrule[serve]'")
    from payrule.serve import DEFAULT_MAX_BODY

    max_body = args.max_body if args.max_body is not None else DEFAULT_MAX_BODY
    policies = load_policies(args)  # a PolicyError is reported by payrule.cli.main: exit 2, no traceback
    options = dict(host=args.host, port=args.port, access_log=args.access_log, log_level=args.log_level,
                   server_header=False, proxy_headers=False)
    if args.workers == 1:
        app = create_app(policies, max_body)
        gc.freeze()  # see app_from_environment
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return 0
    del policies  # checked; each worker loads its own
    settings = {name: getattr(args, name) for name in _POLICY_OPTIONS} | {"max_body": max_body}
    os.environ[ENV_SETTINGS] = json.dumps(settings)  # inherited by the workers
    return _supervise(args.workers, options)


def app_from_environment():
    """The app of one worker of `payrule serve --workers N`, from ENV_SETTINGS, which the command set after
    loading the same policies once and reporting any error."""
    import sys

    from payrule.api import PolicyError
    from payrule.serve.app import create_app

    settings = json.loads(os.environ[ENV_SETTINGS])
    try:
        policies = load_policies(argparse.Namespace(**{k: settings[k] for k in _POLICY_OPTIONS}))
    except PolicyError as exc:  # changed on disk since the command checked them
        sys.stderr.write(exc.rendered + "\n")
        raise SystemExit(2) from None
    app = create_app(policies, settings["max_body"])
    # What is loaded now lives as long as the process: the cyclic collector need not rescan it after every
    # request's claims (measured: a 1,000-claim request takes about a fifth less time). Once, at start.
    gc.freeze()
    return app


# ---- several workers ------------------------------------------------------------------------------
#
# uvicorn's own `workers=N` shares one listening socket among the workers, and a worker that wakes up takes
# every connection waiting: clients that connect together all land on one worker while the other idles
# (measured: four keep-alive clients sending 1,000-claim requests kept one worker at 97% and the other at
# 0%). So each worker listens on a socket of its own on the same port (SO_REUSEPORT), among which the kernel
# spreads the connections, and runs uvicorn's Server on it; this small supervisor starts them, restarts one
# that dies, and stops them all on SIGINT or SIGTERM.

_STARTUP_FAILED = (2, 3)  # a worker exiting so at start (policy error, bind error) would fail again


def _socket(host: str, port: int, reuse_port: bool):
    import socket

    # IPPROTO_TCP named, as uvicorn does: asyncio sets TCP_NODELAY only on sockets that say so (without it
    # a response's headers and body wait for the client's delayed ACK: 40 ms a request).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(options: dict) -> None:
    """One worker process: its own socket on the shared port, uvicorn's Server, the app from the environment."""
    import logging
    import sys

    import uvicorn

    config = uvicorn.Config("payrule.cli.commands.serve:app_from_environment", factory=True, **options)
    try:
        sock = _socket(options["host"], options["port"], reuse_port=True)
    except OSError as exc:  # taken since the supervisor looked: as uvicorn does, an error line and exit 3
        logging.getLogger("uvicorn.error").error(exc)
        sys.exit(3)
    sock.listen(config.backlog)
    uvicorn.Server(config).run(sockets=[sock])


def _supervise(workers: int, options: dict) -> int:
    import logging
    import multiprocessing
    import signal
    import socket
    import time
    from multiprocessing.connection import wait

    import uvicorn

    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux or a BSD: uvicorn's supervisor
        uvicorn.run("payrule.cli.commands.serve:app_from_environment", factory=True, workers=workers, **options)
        return 0
    uvicorn.Config(lambda: None, log_level=options["log_level"]).configure_logging()  # uvicorn's log format
    log = logging.getLogger("uvicorn.error")
    try:  # a port another server listens on is an error, not shared: the workers' sockets share it only
        probe = _socket(options["host"], options["port"], reuse_port=False)  # with each other
    except OSError as exc:
        return usage_error(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}")
    options = dict(options, port=probe.getsockname()[1])  # --port 0: one free port, the same for every worker
    probe.close()
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this process is shared
    stopping: list[int] = []

    def stop(sig, frame) -> None:
        stopping.append(sig)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start():
        p = spawn.Process(target=_worker, args=(options,), daemon=False)
        p.start()
        return p, time.monotonic()

    procs = [start() for _ in range(workers)]
    log.info("Started %d workers on http://%s:%d (Press CTRL+C to quit)", workers, options["host"], options["port"])
    status = 0
    try:
        while not stopping:
            wait([p.sentinel for p, _ in procs], timeout=0.5)
            for i, (p, started) in enumerate(procs):
                if p.exitcode is None or stopping:
                    continue
                if p.exitcode in _STARTUP_FAILED and time.monotonic() - started < 30:
                    log.error("worker %d failed to start (exit %d): stopping", p.pid, p.exitcode)
                    stopping.append(0)
                    status = 2
                    break
                log.warning("worker %d exited (%s): starting another", p.pid, p.exitcode)
                if time.monotonic() - started < 5:  # one that keeps dying is restarted once a second, no faster
                    time.sleep(1)
                procs[i] = start()
    finally:
        for p, _ in procs:
            if p.exitcode is None:
                p.terminate()  # SIGTERM: uvicorn finishes the requests under way, then exits
        for p, _ in procs:
            p.join(30)
            if p.exitcode is None:
                p.kill()
                p.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
