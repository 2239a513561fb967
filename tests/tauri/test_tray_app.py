"""The menu-bar app end to end: the real paddock-app binary with a real model, on a real X
server (Xvfb) and session bus, driven only through its tray menu over D-Bus.

Run by scripts/tauri-tests.sh, which provides the X display, a private session bus, a temporary
HOME and the built binary. Needs the system python3 (python3-gi, python3-pytest: the repo's
.venv cannot import gi), xwininfo (x11-utils), ImageMagick's import/identify and libX11.

A fake StatusNotifierWatcher (the part of a desktop panel that tray icons register with) owns
its well-known name before the app starts; the app's tray then registers its item, whose
com.canonical.dbusmenu object is the menu a panel would show. Clicks are dbusmenu "clicked"
events, as a panel sends them.
"""

import ctypes
import ctypes.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import gi
import pytest

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("PADDOCK_APP_BIN", ROOT / "target/debug/paddock-app"))
MODEL = "SmolLM2-135M-Instruct.Q4_1"
ICONS = ROOT / "icons/tray"
SHOTS = ROOT / "build/test/tauri"
WATCHER_XML = """<node><interface name="org.kde.StatusNotifierWatcher">
  <method name="RegisterStatusNotifierItem"><arg name="service" type="s" direction="in"/></method>
  <method name="RegisterStatusNotifierHost"><arg name="service" type="s" direction="in"/></method>
  <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
  <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
  <property name="ProtocolVersion" type="i" access="read"/>
  <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
  <signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
  <signal name="StatusNotifierHostRegistered"/>
</interface></node>"""


def wait_for(what, check, timeout=30.0, every=0.2):
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # the thing waited for may not exist yet
            last = e
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Watcher:
    """org.kde.StatusNotifierWatcher on the session bus, with a host "registered", so
    libayatana-appindicator exports its item over D-Bus. Runs its own GLib loop in a thread."""

    def __init__(self):
        self.items = []  # (bus name, object path), newest last
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the fake watcher did not get its bus name"

    def _run(self):
        context = GLib.MainContext.new()
        context.push_thread_default()
        self._loop = GLib.MainLoop(context)
        info = Gio.DBusNodeInfo.new_for_xml(WATCHER_XML).interfaces[0]

        def on_call(conn, sender, path, iface, method, params, invocation):
            if method == "RegisterStatusNotifierItem":
                service = params.unpack()[0]
                # ayatana sends its object path; other implementations send a bus name.
                item = (sender, service) if service.startswith("/") else (service, "/StatusNotifierItem")
                self.items.append(item)
                conn.emit_signal(None, path, iface, "StatusNotifierItemRegistered",
                                 GLib.Variant("(s)", (item[0] + item[1],)))
            invocation.return_value(None)

        def on_property(conn, sender, path, iface, name):
            return {
                "RegisteredStatusNotifierItems": GLib.Variant("as", [a + b for a, b in self.items]),
                "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
                "ProtocolVersion": GLib.Variant("i", 0),
            }[name]

        def on_bus(conn, name):
            conn.register_object("/StatusNotifierWatcher", info, on_call, on_property, None)

        Gio.bus_own_name(Gio.BusType.SESSION, "org.kde.StatusNotifierWatcher",
                         Gio.BusNameOwnerFlags.NONE, on_bus,
                         lambda *_: self._ready.set(), None)
        self._loop.run()

    def stop(self):
        self._loop.quit()


class Tray:
    """The registered item and its dbusmenu, as a panel sees them."""

    def __init__(self, bus, name, path):
        self.bus, self.name, self.path = bus, name, path
        self.menu = self.item_property("Menu")

    def _call(self, path, iface, method, args, reply):
        return self.bus.call_sync(self.name, path, iface, method, args, GLib.VariantType(reply),
                                  Gio.DBusCallFlags.NONE, 5000, None).unpack()

    def item_property(self, prop):
        return self._call(self.path, "org.freedesktop.DBus.Properties", "Get",
                          GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", prop)), "(v)")[0]

    def layout(self):
        """Top-level items as dicts: id, label, type, enabled, toggle-type, toggle-state."""
        _, (_, _, children) = self._call(self.menu, "com.canonical.dbusmenu", "GetLayout",
                                         GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")
        items = [dict(props, id=item_id) for item_id, props, _ in children]
        for item in items:  # dbusmenu labels mark mnemonics with "_" and write "_" as "__"
            if "label" in item:
                item["label"] = re.sub(r"_(.)", r"\1", item["label"])
        return items

    def submenu(self, label):
        """The items of the top-level submenu `label`, as dicts like layout()'s."""
        parent = self.entry(label)["id"]
        _, (_, _, children) = self._call(self.menu, "com.canonical.dbusmenu", "GetLayout",
                                         GLib.Variant("(iias)", (parent, -1, [])), "(u(ia{sv}av))")
        return [dict(props, id=item_id) for item_id, props, _ in children]

    def click_id(self, item_id):
        self._call(self.menu, "com.canonical.dbusmenu", "Event",
                   GLib.Variant("(isvu)", (item_id, "clicked", GLib.Variant("i", 0),
                                           int(time.time()))), "()")

    def entry(self, label):
        for item in self.layout():
            if item.get("label") == label:
                return item
        pytest.fail(f"no menu item {label!r} in {self.layout()}")

    def entry_starting(self, prefix):
        """The item whose label starts with `prefix` (labels that say more while on)."""
        for item in self.layout():
            if item.get("label", "").startswith(prefix):
                return item
        pytest.fail(f"no menu item starting {prefix!r} in {self.layout()}")

    def status(self):
        return self.layout()[0]["label"]

    def click(self, label):
        self._call(self.menu, "com.canonical.dbusmenu", "Event",
                   GLib.Variant("(isvu)", (self.entry(label)["id"], "clicked", GLib.Variant("i", 0),
                                           int(time.time()))), "()")

    def icon_is(self, state):
        """Whether the icon the item shows has the pixels of icons/tray/<state>.png."""
        # tray-icon writes each new icon to a file and publishes its path as IconName.
        shown = self.item_property("IconName")
        if not shown.startswith("/"):
            shown = os.path.join(self.item_property("IconThemePath"), shown + ".png")
        return pixels(shown) == pixels(ICONS / f"{state}.png")


def pixels(path):
    """ImageMagick's signature of the decoded pixels (not the file bytes: encoders differ)."""
    return subprocess.run(["identify", "-format", "%#", str(path)], check=True,
                          capture_output=True, text=True).stdout


def size(n):
    """Bytes as the status line writes them: MiB below 1 GiB, else GiB with one decimal."""
    mib = n / 2**20
    return f"{mib:.0f} MiB" if mib < 1024 else f"{mib / 1024:.1f} GiB"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def send(url, method, body):
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.read()


def refused(url):
    try:
        get(url, timeout=2)
    except urllib.error.URLError as e:
        return isinstance(e.reason, ConnectionRefusedError)
    return False


def x_window(name):
    """(window id, map state) of the top-level X window titled `name`, or None."""
    tree = subprocess.run(["xwininfo", "-root", "-children"], capture_output=True, text=True).stdout
    for wid in re.findall(rf'^\s+(0x[0-9a-f]+) "{re.escape(name)}"', tree, re.M):
        info = subprocess.run(["xwininfo", "-id", wid], capture_output=True, text=True).stdout
        state = re.search(r"Map State: (\w+)", info).group(1)
        if state == "IsViewable":
            return wid, state
    return None


def x_windows_named(name):
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    return re.findall(rf'(0x[0-9a-f]+) "{re.escape(name)}"', tree)


def close_window(wid):
    """What a window manager does when the user clicks the close button: WM_DELETE_WINDOW.
    Xvfb runs no window manager, so the ClientMessage is sent here (with libX11 via ctypes)."""
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11"))
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.c_void_p]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                    ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    display = x11.XOpenDisplay(None)
    assert display, "cannot open the X display"
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = int(wid, 16)
    event.xclient.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
    event.xclient.format = 32
    event.xclient.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(display, int(wid, 16), 0, 0, ctypes.byref(event))
    x11.XFlush(display)
    x11.XCloseDisplay(display)


class App:
    """A running paddock-app, its log in build/test/tauri/<name>.log."""

    def __init__(self, name, port, **env):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = SHOTS / f"{name}.log"
        self.env = dict(os.environ, PADDOCK_PORT=str(port), **env)
        # One engine thread: the test machine's cores are shared, and llama.cpp's threads
        # wait on each other by spinning, which collapses when a core is taken.
        self.command = [str(BINARY), "--threads", "1"]
        with open(self.log_path, "wb") as log:
            # The working directory is the repo root: the app falls back to its models/ there.
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def bus():
    assert os.environ.get("DISPLAY") and os.environ.get("DBUS_SESSION_BUS_ADDRESS"), \
        "run through scripts/tauri-tests.sh (Xvfb and a private session bus)"
    assert BINARY.is_file(), f"{BINARY} is missing: cargo build -p paddock-app"
    assert (ROOT / "models" / f"{MODEL}.gguf").is_file(), "run scripts/fetch-models.sh first"
    return Gio.bus_get_sync(Gio.BusType.SESSION, None)


@pytest.fixture(scope="module")
def watcher(bus):
    w = Watcher()
    yield w
    w.stop()


def tray_of(bus, watcher, count):
    """The tray of the `count`-th item registered since the watcher started."""
    wait_for("the tray item to register", lambda: len(watcher.items) >= count)
    return Tray(bus, *watcher.items[count - 1])


@pytest.fixture(scope="module")
def app(watcher):
    a = App("app", free_port())
    yield a
    a.kill()


@pytest.fixture(scope="module")
def tray(bus, watcher, app):
    return tray_of(bus, watcher, 1)


def test_the_app_serves_the_model_over_http(app):
    status, body = wait_for("GET /health", lambda: get(app.url + "/health"), timeout=60)
    assert status == 200 and json.loads(body)["status"] == "ok"
    _, body = get(app.url + "/v1/models")
    assert [m["id"] for m in json.loads(body)["data"] if m["loaded"]] == [MODEL]


def test_the_tray_registers_and_its_menu_has_every_item(tray):
    labels = [i.get("label") if i.get("type") != "separator" else "—" for i in tray.layout()]
    assert labels[1:] == ["—", "Server on", "Model", "Copy API URL", "Open Paddock…", "—",
                          "Lend this machine", "Launch at login", "—", "Quit Paddock"]
    status = tray.layout()[0]
    assert status.get("enabled") is False
    line = rf"{re.escape(MODEL)} · (\d+ MiB|\d+\.\d GiB) of \d+\.\d GiB( · \d+ t/s)?( · \d+ % drafts accepted)?"
    wait_for("the status line to show the model and memory",
             lambda: re.fullmatch(line, tray.status()))
    assert tray.entry("Server on")["toggle-type"] == "checkmark"
    assert tray.entry("Server on")["toggle-state"] == 1
    assert tray.entry("Launch at login")["toggle-state"] == 0
    assert tray.entry("Lend this machine")["toggle-type"] == "checkmark"
    assert tray.entry("Lend this machine")["toggle-state"] == 0
    assert tray.item_property("Status") == "Active"
    wait_for("the idle icon", lambda: tray.icon_is("idle"))


def test_generation_shows_in_the_icon_and_its_speed_in_the_status_line(app, tray):
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Count on."}],
                       "max_tokens": 400, "ignore_eos": True}).encode()
    request = urllib.request.Request(app.url + "/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
    done = threading.Event()
    threading.Thread(target=lambda: (urllib.request.urlopen(request, timeout=300).read(),
                                     done.set()), daemon=True).start()
    wait_for("the generating icon", lambda: tray.icon_is("generating"), timeout=20, every=0.1)
    assert done.wait(300), "the completion did not finish"
    # The menu drops the drafts' acceptance when the line is too long (the tooltip keeps it).
    status = wait_for("tokens/s in the status line",
                      lambda: re.search(r"· (\d+) t/s( · \d+ % drafts accepted)?$", tray.status()))
    assert int(status.group(1)) > 0
    wait_for("the idle icon again", lambda: tray.icon_is("idle"))


def test_copy_api_url_puts_the_openai_base_url_on_the_clipboard(app, tray):
    tray.click("Copy API URL")
    read = ("import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk, Gdk; "
            "print(Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD).wait_for_text())")
    text = wait_for("the clipboard", lambda: subprocess.run(
        [sys.executable, "-c", read], capture_output=True, text=True, timeout=10).stdout.strip()
        == app.url + "/v1")
    assert text


def test_server_on_stops_the_server_and_starts_it_again(app, tray):
    tray.click("Server on")
    wait_for("the server to stop", lambda: refused(app.url + "/health"))
    wait_for("the menu to say so", lambda: tray.status() == "Server off"
             and tray.entry("Server on")["toggle-state"] == 0)
    assert tray.entry("Copy API URL").get("enabled") is False
    wait_for("the stopped icon", lambda: tray.icon_is("stopped"))
    assert app.proc.poll() is None

    tray.click("Server on")
    wait_for("the server to serve again", lambda: get(app.url + "/health")[0] == 200, timeout=60)
    wait_for("the check mark", lambda: tray.entry("Server on")["toggle-state"] == 1)
    wait_for("the idle icon", lambda: tray.icon_is("idle"))


def test_launch_at_login_writes_and_removes_the_login_item(tray):
    desktop = Path(os.environ["HOME"]) / ".config/autostart/Paddock.desktop"
    assert not desktop.exists()
    tray.click("Launch at login")
    wait_for("the autostart entry", desktop.is_file)
    entry = desktop.read_text()
    assert "Name=Paddock" in entry and f"Exec={BINARY.resolve()}" in entry, entry
    wait_for("the check mark", lambda: tray.entry("Launch at login")["toggle-state"] == 1)
    tray.click("Launch at login")
    wait_for("the entry to go", lambda: not desktop.exists())
    wait_for("the check mark to clear", lambda: tray.entry("Launch at login")["toggle-state"] == 0)


def test_the_web_ui_and_the_tray_change_the_same_login_item(app, tray):
    desktop = Path(os.environ["HOME"]) / ".config/autostart/Paddock.desktop"
    state = json.loads(send(app.url + "/api/autostart", "PUT", {"enabled": True}))
    assert state["enabled"] is True and state["supported"] is True, state
    assert desktop.is_file()
    wait_for("the tray's check mark", lambda: tray.entry("Launch at login")["toggle-state"] == 1)
    tray.click("Launch at login")
    wait_for("the entry to go", lambda: not desktop.exists())
    assert json.loads(get(app.url + "/api/autostart")[1])["enabled"] is False


def answers_rpc(port):
    """Whether a ggml RPC worker listens on 127.0.0.1:port: it answers the protocol's greeting
    (HELLO, 14, with 24 bytes of zero transport capabilities) with its version (as
    src/engine/rpc/greeting.rs sends and reads it)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(bytes([14]) + (24).to_bytes(8, "little") + bytes(24))
            s.settimeout(5)
            reply = b""
            while len(reply) < 8 + 4 + 24:
                chunk = s.recv(64)
                if not chunk:
                    break
                reply += chunk
            return len(reply) == 36 and int.from_bytes(reply[:8], "little") == 28 and reply[8] > 0
    except OSError:
        return False


def test_lend_this_machine_runs_a_worker_until_clicked_again(app, tray):
    """Lent from the tray: on loopback, llama.cpp's default port; the web UI's /api/lend agrees."""
    port = 50052
    assert not answers_rpc(port), f"something already answers on {port}"
    lend = "Lend this machine"
    assert tray.entry(lend).get("enabled", True) is True
    tray.click(lend)
    wait_for("the worker to answer", lambda: answers_rpc(port), timeout=60)
    item = wait_for("the check mark", lambda: (e := tray.entry_starting(lend))["toggle-state"] == 1 and e)
    assert item["label"] == f"{lend} (127.0.0.1:{port})", item
    assert json.loads(get(app.url + "/api/lend")[1]) == {
        "on": True, "endpoint": f"127.0.0.1:{port}", "lan": False, "cache": False}

    tray.click(item["label"])
    wait_for("the worker to stop", lambda: not answers_rpc(port))
    wait_for("the check mark to clear", lambda: tray.entry_starting(lend)["toggle-state"] == 0)
    assert tray.entry(lend)  # the label back to plain
    assert json.loads(get(app.url + "/api/lend")[1]) == {"on": False}

    # Turned on from the web UI, the tray shows it within its 2 s look; off again from there.
    send(app.url + "/api/lend", "PUT", {"on": True, "port": port})
    wait_for("the tray's check mark", lambda: tray.entry_starting(lend)["toggle-state"] == 1)
    send(app.url + "/api/lend", "PUT", {"on": False})
    wait_for("the check mark to clear", lambda: tray.entry_starting(lend)["toggle-state"] == 0)
    assert tray.entry(lend)
    assert not answers_rpc(port)

    # The worker belongs to the running server: Server off stops it, and the item waits
    # (disabled) for the server to be on again.
    tray.click(lend)
    wait_for("the worker to answer", lambda: answers_rpc(port), timeout=60)
    tray.click("Server on")
    wait_for("the server to stop", lambda: refused(app.url + "/health"))
    wait_for("the worker to stop with it", lambda: not answers_rpc(port))
    wait_for("the item unchecked and disabled",
             lambda: (e := tray.entry(lend))["toggle-state"] == 0 and e.get("enabled") is False)
    tray.click("Server on")
    wait_for("the server to serve again", lambda: get(app.url + "/health")[0] == 200, timeout=60)
    wait_for("the item enabled", lambda: tray.entry(lend).get("enabled", True) is True)
    assert json.loads(get(app.url + "/api/lend")[1]) == {"on": False}


def test_unloading_and_loading_a_model_show_in_the_status_line(app, tray):
    send(app.url + "/api/models/unload", "POST", {})
    wait_for("the status line", lambda: tray.status() == "Serving, no model loaded")
    send(app.url + "/api/models/load", "POST", {"model": MODEL})
    wait_for("the model again", lambda: tray.status().startswith(MODEL + " · "), timeout=60)
    wait_for("the idle icon", lambda: tray.icon_is("idle"))


def test_the_model_menu_loads_models_beside_and_unloads_them(app, tray):
    gemma = "gemma-3-270m-q4_k_m"

    def models():
        return {i["label"].replace("__", "_"): i for i in tray.submenu("Model")}

    def checked(model):
        return models().get(f"{model} (fits)", {}).get("toggle-state")

    def loaded():
        return [m["id"] for m in json.loads(get(app.url + "/api/status")[1])["models"]]

    def choose(model):
        tray.click_id(models()[f"{model} (fits)"]["id"])

    wait_for("the model menu", lambda: f"{MODEL} (fits)" in models())
    assert checked(MODEL) == 1 and checked(gemma) == 0
    # Every entry can be chosen, loaded or not: choosing a loaded one unloads it.
    assert all(i.get("enabled", True) for i in models().values()), models()

    # Choosing Gemma loads it beside SmolLM2: both checked; the status line names Gemma (used
    # last), counts the other, and its memory is what both take together.
    choose(gemma)
    line = wait_for("Gemma beside SmolLM2",
                    lambda: re.fullmatch(rf"{re.escape(gemma)} \+1 · (.+) of \d+\.\d GiB", tray.status()),
                    timeout=120)
    status = json.loads(get(app.url + "/api/status")[1])
    assert [m["id"] for m in status["models"]] == [MODEL, gemma]
    assert status["model"]["id"] == gemma
    both = sum(m["measured"]["weights"] + (m["measured"]["kv_cache"] or 0)
               + (m["measured"]["recurrent_state"] or 0) + (m["measured"]["compute"] or 0)
               for m in status["models"])
    assert line.group(1) == size(both), (line.group(0), both)
    wait_for("both check marks", lambda: checked(MODEL) == 1 and checked(gemma) == 1)

    # Choosing SmolLM2, loaded, unloads it alone; choosing it again loads it back beside Gemma.
    choose(MODEL)
    wait_for("SmolLM2 unloaded", lambda: re.fullmatch(rf"{re.escape(gemma)} · .+ of .*", tray.status()))
    assert loaded() == [gemma]
    wait_for("its check mark to clear", lambda: checked(MODEL) == 0 and checked(gemma) == 1)
    choose(MODEL)
    wait_for("SmolLM2 back", lambda: tray.status().startswith(f"{MODEL} +1 · "), timeout=120)
    assert loaded() == [gemma, MODEL]

    # Unloading Gemma leaves SmolLM2 alone, the model later starts serve (it was chosen last).
    choose(gemma)
    wait_for("Gemma unloaded", lambda: re.fullmatch(rf"{re.escape(MODEL)} · .+ of .*", tray.status()))
    assert loaded() == [MODEL]
    wait_for("the check marks", lambda: checked(MODEL) == 1 and checked(gemma) == 0)
    wait_for("the idle icon", lambda: tray.icon_is("idle"))


def test_a_second_launch_shows_the_running_app_instead(app, tray):
    assert x_window("Paddock") is None, "the app must start without a window"
    second = subprocess.run(app.command, cwd=ROOT, env=app.env, capture_output=True, timeout=30)
    assert second.returncode == 0, second.stderr.decode(errors="replace")[-2000:]
    wait_for("the window", lambda: x_window("Paddock"))
    assert app.proc.poll() is None


def test_the_window_shows_the_ui_and_closing_it_only_hides_it(app, tray):
    tray.click("Open Paddock…")
    wid, _ = wait_for("the window", lambda: x_window("Paddock"))
    time.sleep(6)  # WebKit's web process starts and paints (slow on 2 cores)
    subprocess.run(["import", "-window", "root", str(SHOTS / "window.png")], check=True)
    # Something was painted: more colours than a blank window on the black root.
    colours = subprocess.run(["identify", "-format", "%k", str(SHOTS / "window.png")],
                             check=True, capture_output=True, text=True).stdout
    assert int(colours) > 8, f"the window looks blank ({colours} colours)"

    close_window(wid)
    wait_for("the window to hide", lambda: x_window("Paddock") is None)
    assert x_windows_named("Paddock"), "closing must hide the window, not destroy it"
    assert app.proc.poll() is None and get(app.url + "/health")[0] == 200

    tray.click("Open Paddock…")
    wait_for("the window again", lambda: x_window("Paddock"))


def test_quit_stops_the_server_and_exits_0(app, tray):
    tray.click("Quit Paddock")
    assert app.proc.wait(timeout=60) == 0, app.log()[-3000:]
    assert refused(app.url + "/health")


def test_a_server_that_cannot_start_shows_the_error(bus, watcher, app):
    assert app.proc.poll() is not None, "runs after Quit: single instance would hand over"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        failing = App("app-port-taken", taken.getsockname()[1])
        try:
            tray = tray_of(bus, watcher, 2)
            status = wait_for("the error", lambda: tray.status().startswith("Error:") and tray.status())
            assert "address" in status.lower() or "bind" in status.lower(), status
            wait_for("the error icon", lambda: tray.icon_is("error"))
            assert tray.entry("Server on")["toggle-state"] == 0
            tray.click("Quit Paddock")
            assert failing.proc.wait(timeout=30) == 0
        finally:
            failing.kill()
