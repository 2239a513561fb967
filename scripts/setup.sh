#!/usr/bin/env bash
# Prepare a machine for building and testing Paddock. Idempotent and fast when already done:
#   - Debian/Ubuntu packages needed by the llama.cpp build, the Tauri shell and the tests (apt is
#     skipped when all are present)
#   - a Python venv at .venv/ with the test/bench packages (tests/python/requirements.txt)
#   - the Node test packages (tests/node, from its package-lock.json)
#   - a check that the Rust toolchain (cargo) is available
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[setup] $*"; }

APT_PKGS=(build-essential cmake clang libclang-dev pkg-config libgomp1 curl ca-certificates python3-venv nodejs
  # the Tauri shell (src-tauri): WebKitGTK, GTK, the tray (appindicator), icons, input helpers
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  # headless UI tests: the browser (Playwright drives Debian's chromium), a display, a session bus
  # and the tray-menu test's D-Bus bindings, screenshots
  chromium xvfb xauth dbus dbus-x11 python3-gi gir1.2-glib-2.0 gir1.2-gtk-3.0 python3-pytest x11-utils
  imagemagick fonts-dejavu-core)

# --- system packages -------------------------------------------------------------------------
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo >/dev/null || { echo "[setup] need root or sudo to install: ${missing[*]}" >&2; exit 1; }
      SUDO="sudo"
    fi
    log "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "apt packages present"
  fi
else
  log "not a dpkg system; make sure these are installed: ${APT_PKGS[*]}"
  for t in cmake cc c++ pkg-config curl; do
    command -v "$t" >/dev/null || { echo "[setup] missing tool: $t" >&2; exit 1; }
  done
fi

# --- Rust toolchain --------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "[setup] cargo not found. Install Rust (https://rustup.rs): curl https://sh.rustup.rs -sSf | sh -s -- -y" >&2
  exit 1
fi
log "rust: $(cargo --version)"

# --- Python venv -----------------------------------------------------------------------------
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "[setup] $PY not found" >&2; exit 1; }
REQ="$ROOT/tests/python/requirements.txt"
STAMP="$ROOT/.venv/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
  log "creating venv .venv/ with $("$PY" --version 2>&1)"
  "$PY" -m venv "$ROOT/.venv"
fi
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
  log "installing Python packages from tests/python/requirements.txt"
  "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" >"$STAMP"
else
  log "venv up to date"
fi
# --- Node packages (the openai Node SDK tests) -----------------------------------------------
NODE_DIR="$ROOT/tests/node"
NODE_STAMP="$NODE_DIR/node_modules/.lock.sha256"
want="$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)"
if ! command -v npm >/dev/null 2>&1; then
  # NodeSource's nodejs ships npm itself; Debian's nodejs needs the separate package.
  log "installing npm"
  ${SUDO:-} apt-get install -y -qq --no-install-recommends npm
fi
if [[ "$(cat "$NODE_STAMP" 2>/dev/null || true)" != "$want" ]]; then
  log "installing Node packages for tests/node ($(node --version))"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$NODE_STAMP"
else
  log "node packages up to date"
fi
log "ok"
