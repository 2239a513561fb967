"""Fixtures for the coding-agent CLI tests (Claude Code, Codex CLI, opencode) against a live server.

The CLIs are the real npm packages pinned in package.json (installed by `npm ci` here, which
scripts/agent-tests.sh does). Each test runs one CLI non-interactively in an empty temporary
work dir, with a throwaway HOME/config, telemetry and updates off, and a dead HTTP(S) proxy so
that anything aimed beyond loopback fails fast instead of hanging.

Between the CLI and the server sits a small recording pass-through (`Recorder`): it forwards
every request unchanged to PADDOCK_URL and streams the answer back as it comes, and keeps the
method, path, status, timing and JSON body of each exchange, so a test can check which API the
CLI really used (and that the server answered it), not only the CLI's own account of it.

Environment (same convention as tests/python):
  PADDOCK_URL      base URL of the server, e.g. http://127.0.0.1:18080 (required; a trailing
                   "/v1" is accepted)
  PADDOCK_MODEL    model id the server serves (default: SmolLM2-135M-Instruct.Q4_1)
  PADDOCK_API_KEY  key, if the server requires one (default: a dummy key)
  AGENT_BUDGET     seconds one agent test may take, retries included (default 300)
  AGENT_ATTEMPTS   runs of an agent when the model does not make the call (default 3)
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NODE_BIN = HERE / "node_modules" / ".bin"
DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1"


@dataclass(frozen=True)
class Target:
    root: str  # e.g. http://127.0.0.1:18080
    model: str
    api_key: str


def _target_from_env() -> Target:
    url = os.environ.get("PADDOCK_URL", "").strip().rstrip("/")
    if not url:
        raise pytest.UsageError(
            "PADDOCK_URL is not set. Start a server and point the tests at it, e.g.\n"
            "  PADDOCK_URL=http://127.0.0.1:18080 .venv/bin/python -m pytest tests/agents\n"
            "(scripts/agent-tests.sh does all of this for you)."
        )
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    return Target(
        root=root,
        model=os.environ.get("PADDOCK_MODEL", "").strip() or DEFAULT_MODEL,
        api_key=os.environ.get("PADDOCK_API_KEY", "") or "sk-no-key-required",
    )


_TARGET_KEY = pytest.StashKey[Target]()


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.collectonly:
        config.stash[_TARGET_KEY] = _target_from_env()


def pytest_report_header(config: pytest.Config) -> str:
    t = config.stash.get(_TARGET_KEY, None)
    return f"paddock target: {t.root} model={t.model}" if t else "paddock target: (unset)"


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    t = pytestconfig.stash.get(_TARGET_KEY, None)
    return t if t is not None else _target_from_env()


# --- recording pass-through ------------------------------------------------------------------

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "host", "content-length",
}


@dataclass
class Exchange:
    method: str
    path: str
    started: float
    body: object = None  # parsed JSON request body (None if empty / not JSON)
    status: int | None = None
    ended: float | None = None
    response: bytes = b""  # first MAX_KEPT bytes of the answer
    error: str | None = None

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def brief(self) -> str:
        took = f"{self.ended - self.started:.1f}s" if self.ended else "unfinished"
        extra = f" error={self.error}" if self.error else ""
        return f"{self.method} {self.path} -> {self.status} ({took}){extra}"


MAX_KEPT = 1 << 20


@dataclass
class Recorder:
    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.exchanges.clear()

    def model_calls(self, route: str) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.method == "POST" and e.route == route]

    def summary(self) -> str:
        with self.lock:
            return "\n".join("  " + e.brief() for e in self.exchanges) or "  (no requests)"

    def start(self) -> None:
        up = urllib.parse.urlsplit(self.upstream)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                ex = Exchange(self.command, self.path, time.time())
                try:
                    ex.body = json.loads(raw) if raw else None
                except ValueError:
                    ex.body = None
                with recorder.lock:
                    recorder.exchanges.append(ex)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=900)
                try:
                    conn.request(self.command, self.path, body=raw or None, headers=headers)
                    resp = conn.getresponse()
                    ex.status = resp.status
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    length = resp.getheader("Content-Length")
                    if length is not None:
                        data = resp.read()
                        ex.response = data[:MAX_KEPT]
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(data)
                    else:  # streamed (SSE): pass each piece on as soon as it arrives
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        kept = bytearray()
                        while True:
                            piece = resp.read1(65536)
                            if not piece:
                                break
                            if len(kept) < MAX_KEPT:
                                kept += piece
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                        ex.response = bytes(kept)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError) as e:
                    ex.error = f"client went away: {e!r}"
                    self.close_connection = True
                except Exception as e:  # upstream failure: answer 502 if nothing was sent yet
                    ex.error = repr(e)
                    self.close_connection = True
                    if ex.status is None:
                        try:
                            self.send_error(502, f"recorder: upstream failed: {e!r}")
                        except OSError:
                            pass
                finally:
                    ex.ended = time.time()
                    conn.close()  # closing tells the server to drop an abandoned request

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def recorder(target: Target, request: pytest.FixtureRequest):
    rec = Recorder(target.root)
    rec.start()
    yield rec
    rec.stop()
    dump_exchanges(rec, request.node.name)


def dump_exchanges(rec: Recorder, test: str) -> None:
    """With AGENT_DUMP_DIR set, keep each exchange of the test's last run (request body and
    answer) as files, to read what the CLI sent and what the model said."""
    root = os.environ.get("AGENT_DUMP_DIR")
    if not root:
        return
    out = Path(root) / test
    out.mkdir(parents=True, exist_ok=True)
    for i, e in enumerate(rec.exchanges):
        stem = out / f"{i:02d}-{e.method}-{e.route.strip('/').replace('/', '_') or 'root'}"
        stem.with_suffix(".request.json").write_text(json.dumps(e.body, indent=1))
        stem.with_suffix(".response.txt").write_bytes(e.response)


# --- running a CLI ---------------------------------------------------------------------------


def cli_path(name: str) -> Path:
    """The CLI's launcher in node_modules/.bin; skips the test when the packages are missing."""
    p = NODE_BIN / name
    if not p.exists():
        pytest.skip(
            f"{name} is not installed ({p} missing): run `npm ci` in tests/agents "
            "(scripts/agent-tests.sh does it)"
        )
    return p


@dataclass
class Sandbox:
    """An empty work dir and a throwaway home for one CLI run."""

    work: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "SHELL", "USER", "LOGNAME", "TZ")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        dead = "http://127.0.0.1:9"  # discard port: anything that ignores loopback fails fast
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_STATE_HOME=str(self.home / ".local" / "state"),
            HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead,
            http_proxy=dead, https_proxy=dead, all_proxy=dead,
            NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
            NO_COLOR="1", CI="1",
        )
        env.setdefault("TERM", "dumb")
        env.update(extra)
        return env


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    return Sandbox(work, home)


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def events(self) -> list[dict]:
        """stdout parsed as JSON lines (lines that are not JSON are skipped)."""
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def tails(self, n: int = 4000) -> str:
        return f"--- stdout (tail) ---\n{self.stdout[-n:]}\n--- stderr (tail) ---\n{self.stderr[-n:]}"


def run_cli(
    argv: list[str],
    sandbox: Sandbox,
    env: dict[str, str],
    recorder: Recorder,
    timeout: float,
    stdin: str | None = None,
) -> Run:
    """Run a CLI to completion in its own process group; kill the whole group on timeout.
    `stdin`, when given, is written to the CLI's standard input (else it reads /dev/null)."""
    t0 = time.time()
    proc = subprocess.Popen(
        argv, cwd=sandbox.work, env=env,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        run = Run(argv, -9, out, err, time.time() - t0)
        pytest.fail(
            f"{Path(argv[0]).name} did not finish within {timeout:.0f}s\n"
            f"requests seen by the server:\n{recorder.summary()}\n{run.tails()}",
            pytrace=False,
        )
    finally:
        _kill_group(proc)  # helpers the CLI left behind (MCP, shells) go too
    run = Run(argv, proc.returncode, out, err, time.time() - t0)
    print(f"{Path(argv[0]).name}: exit {run.returncode} after {run.seconds:.1f}s")
    print("requests:\n" + recorder.summary())
    return run


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the process group the CLI leads (start_new_session: pgid == pid)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + 5
        while time.time() < deadline:
            if proc.poll() is not None:
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)
