"""The Workers page against a real server and a real `paddock worker --lan`: the worker is found
over mDNS, picked, and the model reloaded spread over it; this machine is lent and taken back;
a bad address gets the API's own error. Each result is checked against the admin API."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import ARTIFACTS, LOAD_TIMEOUT_MS, SMOL_ID, Server, Worker, free_port, wait_ready


def found_row(page: Page, port: int):
    return page.locator(f'[data-testid="found-worker"][data-endpoint$=":{port}"]')


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def has_multicast() -> bool:
    """Whether an interface other than loopback is up with multicast (IFF_UP, IFF_MULTICAST),
    as mDNS needs (tests/rpc.rs checks the same)."""
    for interface in Path("/sys/class/net").glob("*"):
        try:
            flags = int((interface / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        if interface.name != "lo" and flags & 0x1 and flags & 0x1000:
            return True
    return False


@pytest.mark.skipif(not has_multicast(), reason="no network interface is up with multicast: mDNS cannot work")
def test_a_worker_found_on_the_network_is_picked_and_the_model_reloaded_over_it(
        workers_page: Page, workers_server: Server, worker: Worker):
    page, server = workers_page, workers_server
    page.goto("/#workers")
    wait_ready(page, SMOL_ID)
    usage = page.locator(f'[data-testid="usage-model"][data-model-id="{SMOL_ID}"]')
    expect(usage).to_have_attribute("data-workers", "")
    expect(usage).to_contain_text("this machine only")
    expect(page.get_by_test_id("workers-chosen")).to_contain_text("runs on this machine only")

    # The page asks again and again; the worker shows up once its announcement is heard.
    row = found_row(page, worker.port)
    expect(row).to_be_visible(timeout=60_000)
    endpoint = row.get_attribute("data-endpoint")
    listed = next(w for w in server.api("GET", "/api/workers")["found"] if w["endpoint"] == endpoint)
    assert listed["memory_free"] > 0 and listed["in_use"] is False, listed
    expect(row).to_contain_text(listed["name"])
    memory = row.get_by_test_id("worker-memory")
    expect(memory).to_have_attribute("data-free", str(listed["memory_free"]))
    expect(memory).to_have_attribute("data-total", str(listed["memory_total"]))
    expect(memory).to_contain_text(" free of ")
    share = min(1, listed["memory_free"] / listed["memory_total"])
    # The browser writes 100.0% back as 100%: compare the number.
    bar = row.locator(".mem-bar .mem-free")

    def bar_width() -> float:
        found = re.search(r"width:\s*([\d.]+)%", bar.get_attribute("style") or "")
        return float(found.group(1)) if found else -1.0

    wait_until(f"a free-memory bar {share * 100:.1f}% wide",
               lambda: abs(bar_width() - share * 100) < 0.1)

    # Ticked, it joins the model's list, not saved yet.
    row.get_by_test_id("found-pick").check()
    chosen = page.locator(f'[data-testid="chosen-worker"][data-endpoint="{endpoint}"]')
    expect(chosen).to_contain_text("Not saved")
    assert server.api("GET", "/api/settings")["settings"]["rpc"] == []

    page.get_by_test_id("workers-save-reload").click()
    message = page.get_by_test_id("workers-message")
    expect(message).to_have_text(f"Reloaded {SMOL_ID} over {endpoint}.", timeout=LOAD_TIMEOUT_MS)
    assert server.api("GET", "/api/settings")["settings"]["rpc"] == [endpoint]
    status = server.api("GET", "/api/status")
    assert [m["id"] for m in status["models"]] == [SMOL_ID]
    assert status["models"][0]["workers"] == [endpoint], status["models"][0]

    # The page says so: the loaded model runs over it, the found worker is in use by it, and
    # the list shows what the worker reported.
    expect(usage).to_have_attribute("data-workers", endpoint)
    expect(row.get_by_test_id("worker-in-use")).to_have_text(f"In use by {SMOL_ID}")
    expect(chosen.get_by_test_id("worker-in-use")).to_be_visible()
    expect(chosen).not_to_contain_text("Not saved")
    devices = [d for d in server.api("GET", "/api/workers")["devices"] if d["endpoint"] == endpoint]
    assert devices, "the worker reported no device"
    expect(chosen.get_by_test_id("worker-device")).to_have_count(len(devices))
    expect(chosen.get_by_test_id("worker-memory").first).to_have_attribute("data-total", str(devices[0]["memory_total"]))
    wait_ready(page, SMOL_ID)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(ARTIFACTS / f"workers-{scheme}.png"), full_page=True)

    # Unticked and saved alone: this machine only from the next load; the model loaded now
    # stays spread over it.
    row.get_by_test_id("found-pick").uncheck()
    page.get_by_test_id("workers-save").click()
    expect(message).to_have_text("Saved. The model runs on this machine only when it loads next.")
    assert server.api("GET", "/api/settings")["settings"]["rpc"] == []
    assert server.api("GET", "/api/status")["models"][0]["workers"] == [endpoint]
    expect(chosen).to_have_count(0)


def test_lending_this_machine_on_loopback_then_taking_it_back(workers_page: Page, workers_server: Server):
    page, server = workers_page, workers_server
    page.goto("/#workers")
    expect(page.get_by_test_id("lend-state")).to_have_text("Not lent.")
    # The network option is off unless chosen, with the warning beside it.
    expect(page.get_by_test_id("lend-lan")).not_to_be_checked()
    expect(page.get_by_test_id("lend-warning")).to_contain_text("no password and no encryption")
    assert server.api("GET", "/api/lend") == {"on": False}

    port = free_port()
    page.get_by_test_id("lend-port").fill(str(port))
    page.get_by_test_id("lend-switch").check()
    expect(page.get_by_test_id("lend-endpoint")).to_have_text(f"127.0.0.1:{port}", timeout=60_000)
    expect(page.get_by_test_id("lend-state")).to_contain_text("this machine only")
    expect(page.get_by_test_id("lend-port")).to_be_disabled()
    assert server.api("GET", "/api/lend") == {"on": True, "endpoint": f"127.0.0.1:{port}", "lan": False,
                                              "cache": False}
    assert listening(port)
    # The next poll keeps it shown as on.
    page.wait_for_timeout(2500)
    expect(page.get_by_test_id("lend-switch")).to_be_checked()

    page.get_by_test_id("lend-switch").uncheck()
    expect(page.get_by_test_id("lend-state")).to_have_text("Not lent.", timeout=30_000)
    assert server.api("GET", "/api/lend") == {"on": False}
    wait_until("the worker to stop listening", lambda: not listening(port))
    expect(page.get_by_test_id("lend-port")).to_be_enabled()

    # A port already taken: the API's reason, and the switch back off.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        page.get_by_test_id("lend-port").fill(str(busy))
        # click, not check: the refusal may turn it back off before check() looks.
        page.get_by_test_id("lend-switch").click()
        expect(page.get_by_test_id("lend-error")).to_contain_text(f"127.0.0.1:{busy}", timeout=30_000)
        expect(page.get_by_test_id("lend-switch")).not_to_be_checked()
    assert server.api("GET", "/api/lend") == {"on": False}


def test_an_address_that_is_not_host_and_port_gets_the_api_error(workers_page: Page, workers_server: Server):
    page, server = workers_page, workers_server
    page.goto("/#workers")
    wait_ready(page, SMOL_ID)
    page.get_by_test_id("worker-endpoint").fill("my-mac-studio")
    page.get_by_test_id("worker-endpoint").press("Enter")
    chosen = page.locator('[data-testid="chosen-worker"][data-endpoint="my-mac-studio"]')
    expect(chosen).to_contain_text("Not saved")

    try:
        server.api("PUT", "/api/settings", {"rpc": ["my-mac-studio"]})
        raise AssertionError("the API took an address without a port")
    except urllib.error.HTTPError as err:
        assert err.code == 400
        error = json.loads(err.read())["error"]
    assert error["param"] == "rpc", error

    page.get_by_test_id("workers-save-reload").click()
    message = page.get_by_test_id("workers-message")
    expect(message).to_have_text(error["message"])
    expect(message).to_have_class(re.compile(r"\berror\b"))
    # Nothing was saved or reloaded; the typed address stays to be corrected.
    assert server.api("GET", "/api/settings")["settings"]["rpc"] == []
    assert server.api("GET", "/api/status")["models"][0]["workers"] == []
    expect(chosen).to_be_visible()
    chosen.get_by_role("button", name="Remove my-mac-studio").click()
    expect(chosen).to_have_count(0)
