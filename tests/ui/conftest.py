"""Fixtures for the web UI tests: a real `paddock serve` and a real browser.

Each test gets its own server: the binary from PADDOCK_BIN (default target/debug/paddock) on a
free loopback port, serving SmolLM2-135M from a temporary model folder that also holds
gemma-3-270m (symlinks to models/, fetched by scripts/fetch-models.sh), with a temporary config
file and HOME/XDG folders, so nothing reads or writes the real home. The page is driven by
Playwright's sync API through Debian's chromium (CHROMIUM, default /usr/bin/chromium), headless.

Download tests get a fake Hugging Face hub instead (tests/fakehub/fakehub.py) holding SmolLM2 as
HUB_REPO, and a server serving gemma alone that the hub's endpoint is given to.

Worker tests get a real `paddock worker --lan` and a server that both use an mDNS port of the
test's own (PADDOCK_MDNS_PORT), so the server finds that worker and nothing else on the network.

The server reads the UI from PADDOCK_UI_DIR (default: this checkout's ui/, so the files under
test are the working copy); set PADDOCK_UI_DIR= (empty) to test the copy embedded in the binary.

Screenshots land in build/test/ui/, one per section and color scheme, plus one per failed test.
Run with scripts/ui-tests.sh.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test" / "ui"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
SMOL_ID = "SmolLM2-135M-Instruct.Q4_1"
GEMMA_ID = "gemma-3-270m-q4_k_m"
HUB_REPO = "paddock-test/SmolLM2-135M-Instruct-GGUF"
# About 10 s for SmolLM2's 98 MB: long enough for the page to show the bar mid-way.
HUB_THROTTLE_BYTES_PER_S = 10_000_000

# The machine running these may be slow and shared: loads get minutes, not seconds.
START_TIMEOUT_S = 120
LOAD_TIMEOUT_MS = 120_000
expect.set_options(timeout=30_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc) -> bool:
    """Terminates a helper process (killed after 10 s); whether it was still running."""
    if proc is None or proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return True


class Server:
    """One `paddock serve` process; stop() and start() again keep the port and config file.

    `files` are linked into its model folder, the first one served; `env` is added to its
    environment."""

    def __init__(self, workdir: Path, api_key: str | None = None,
                 files: tuple[str, ...] = (SMOL_FILE, GEMMA_FILE), env: dict[str, str] | None = None):
        binary = Path(os.environ.get("PADDOCK_BIN", "target/debug/paddock"))
        self.binary = binary if binary.is_absolute() else ROOT / binary
        if not os.access(self.binary, os.X_OK):
            pytest.fail(f"no server binary at {self.binary} (set PADDOCK_BIN)")
        self.home = workdir / "home"
        self.models = workdir / "models"
        self.config = workdir / "paddock.toml"
        self.log_path = workdir / "server.log"
        self.api_key = api_key
        self.files = files
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        for name in files:
            source = ROOT / "models" / name
            if not source.exists():
                pytest.fail(f"{source} is missing: run scripts/fetch-models.sh")
            self.models.mkdir(parents=True, exist_ok=True)
            (self.models / name).symlink_to(source)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.touch()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PADDOCK_")}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
        )
        ui_dir = os.environ.get("PADDOCK_UI_DIR", str(ROOT / "ui"))
        if ui_dir:
            env["PADDOCK_UI_DIR"] = ui_dir
        env.update(self.extra_env)
        return env

    @property
    def own_models(self) -> Path:
        """Paddock's own models folder, where downloads go (XDG_DATA_HOME/paddock/models)."""
        return self.home / ".local" / "share" / "paddock" / "models"

    def start(self) -> None:
        argv = [str(self.binary), "serve", "--model", str(self.models / self.files[0]),
                "--port", str(self.port), "--config", str(self.config)]
        if self.api_key:
            argv += ["--api-key", self.api_key]
        log = open(self.log_path, "a")
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        self.proc = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.home)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as res:
                    if res.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        pytest.fail(f"server not healthy after {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """Calls the admin API as the page does (same Origin, JSON body, the key if one is set)."""
        headers = {"Accept": "application/json", "Origin": self.url}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=LOAD_TIMEOUT_MS / 1000) as res:
            return json.loads(res.read())


def run_server(srv: Server, request):
    srv.start()
    yield srv
    srv.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"--- server log ({srv.log_path}) ---\n{srv.log_tail()}")


@pytest.fixture
def server(tmp_path: Path, request):
    yield from run_server(Server(tmp_path), request)


@pytest.fixture
def keyed_server(tmp_path: Path, request):
    yield from run_server(Server(tmp_path, api_key="pk-" + "5e" * 16), request)


class FakeHub:
    """tests/fakehub/fakehub.py serving `root`: repos are folders root/<owner>/<name>/."""

    def __init__(self, workdir: Path, throttle: int):
        self.root = workdir / "hub"
        self.log_path = workdir / "fakehub.log"
        self.throttle = throttle
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def add(self, repo: str, *files: str) -> None:
        folder = self.root / repo
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            (folder / name).symlink_to(ROOT / "models" / name)

    def start(self) -> None:
        argv = [sys.executable, str(ROOT / "tests" / "fakehub" / "fakehub.py"), "--root", str(self.root),
                "--port", "0", "--throttle", str(self.throttle)]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline().strip()  # "listening on http://127.0.0.1:PORT"
        if not line.startswith("listening on "):
            self.stop()
            pytest.fail(f"fake hub did not start ({line!r}):\n{self.log_path.read_text(errors='replace')}")
        self.url = line.removeprefix("listening on ")

    def stop(self) -> None:
        if stop_process(self.proc):
            self.proc.stdout.close()


@pytest.fixture
def fake_hub(tmp_path: Path):
    hub = FakeHub(tmp_path, throttle=HUB_THROTTLE_BYTES_PER_S)
    hub.add(HUB_REPO, SMOL_FILE)
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_server(tmp_path: Path, fake_hub: FakeHub, request):
    # Gemma alone in its folder, so the library has no SmolLM2 until the download brings it.
    srv = Server(tmp_path, files=(GEMMA_FILE,), env={"PADDOCK_HF_ENDPOINT": fake_hub.url})
    # Paddock's own models folder does not exist yet: the first download makes it.
    assert not srv.own_models.exists()
    yield from run_server(srv, request)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


class Worker:
    """A `paddock worker --lan` lending this machine on every address and a free port,
    advertising itself over mDNS on the port `mdns_port` (PADDOCK_MDNS_PORT), so that only the
    test's own server hears it."""

    def __init__(self, workdir: Path, mdns_port: int):
        binary = Path(os.environ.get("PADDOCK_BIN", "target/debug/paddock"))
        self.binary = binary if binary.is_absolute() else ROOT / binary
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            self.port = s.getsockname()[1]
        self.log_path = workdir / "worker.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PADDOCK_")}
        home = workdir / "worker-home"
        home.mkdir(parents=True, exist_ok=True)
        self.env.update(PADDOCK_MDNS_PORT=str(mdns_port), HOME=str(home))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [str(self.binary), "worker", "--lan", "--host", "0.0.0.0", "--port", str(self.port), "-t", "1"]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.log_path.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"worker not listening on {self.port} after {START_TIMEOUT_S} s")

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def mdns_port() -> int:
    return free_udp_port()


@pytest.fixture
def worker(tmp_path: Path, mdns_port: int):
    w = Worker(tmp_path, mdns_port)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def workers_server(tmp_path: Path, mdns_port: int, request):
    """A server that listens for workers on the test's own mDNS port (the `worker` fixture's),
    serving SmolLM2 alone, so a reload spread over a worker is quick."""
    yield from run_server(Server(tmp_path, files=(SMOL_FILE,), env={"PADDOCK_MDNS_PORT": str(mdns_port)}), request)


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(executable, os.X_OK):
        pytest.fail(f"no chromium at {executable} (apt install chromium, or set CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remember each phase's outcome, so the page fixture can screenshot a failed test.
    outcome = yield
    setattr(item, f"rep_{outcome.get_result().when}", outcome.get_result())


def open_page(browser: Browser, base_url: str, request) -> Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1200, "height": 860})
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and print(f"[console] {m.text}"))
    page.on("pageerror", lambda e: print(f"[pageerror] {e}"))
    request.addfinalizer(lambda: close_page(page, request))
    return page


def close_page(page: Page, request) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
        except Exception as err:  # the page may be gone; the test's own error matters more
            print(f"no failure screenshot: {err}")
    page.context.close()


@pytest.fixture
def page(browser: Browser, server: Server, request) -> Page:
    return open_page(browser, server.url, request)


@pytest.fixture
def keyed_page(browser: Browser, keyed_server: Server, request) -> Page:
    return open_page(browser, keyed_server.url, request)


@pytest.fixture
def hub_page(browser: Browser, hub_server: Server, request) -> Page:
    return open_page(browser, hub_server.url, request)


@pytest.fixture
def workers_page(browser: Browser, workers_server: Server, request) -> Page:
    return open_page(browser, workers_server.url, request)


def open_section(page: Page, name: str) -> None:
    page.locator(f'nav a[data-section="{name}"]').click()
    expect(page.locator(f"section#{name}")).to_be_visible()


def wait_ready(page: Page, model_id: str, timeout: int = LOAD_TIMEOUT_MS) -> None:
    # The header names a model while it loads too: the model first, then the state, so the
    # "Ready" seen is the new model's and not the one before.
    expect(page.get_by_test_id("header-model")).to_have_text(model_id, timeout=timeout)
    expect(page.get_by_test_id("header-state")).to_have_text("Ready", timeout=timeout)
