#!/usr/bin/env bash
# The menu-bar app under Xvfb with a private D-Bus session, driven through its tray menu
# (tests/tauri/). Its unit tests (Tauri's mock runtime) run in `cargo test --workspace`.
# Linux only. Needs (Debian/Ubuntu):
#   apt-get install libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev \
#     libxdo-dev xvfb xauth dbus dbus-x11 x11-utils imagemagick python3-gi gir1.2-gtk-3.0 python3-pytest
# and the test model (scripts/fetch-models.sh). Extra arguments go to pytest (e.g. -k quit).
# Screenshot and app logs land in build/test/tauri/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(uname -s)" != Linux ]]; then
  echo "tauri-tests.sh: the Xvfb tests run on Linux only" >&2
  exit 1
fi
for tool in xvfb-run dbus-run-session xwininfo import identify; do
  command -v "$tool" >/dev/null || { echo "tauri-tests.sh: $tool not found (see the apt line above)" >&2; exit 1; }
done
# The system python: python3-gi is built for it (the repo's .venv cannot import gi).
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import gi, pytest' 2>/dev/null \
  || { echo "tauri-tests.sh: $PYTHON needs python3-gi and python3-pytest" >&2; exit 1; }

cargo build -p paddock-app

# A clean desktop session: temporary HOME (the login item and config go there), runtime dir
# (the tray writes its icon files there), no config from the caller's environment.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/home" "$scratch/run"
chmod 700 "$scratch/run"
rm -rf build/test/tauri
mkdir -p build/test/tauri

env -u XDG_CONFIG_HOME -u XDG_DATA_HOME -u XDG_CACHE_HOME -u PADDOCK_CONFIG -u PADDOCK_MODEL \
  -u PADDOCK_HOST -u PADDOCK_PORT -u PADDOCK_API_KEY \
  HOME="$scratch/home" XDG_RUNTIME_DIR="$scratch/run" NO_AT_BRIDGE=1 \
  WEBKIT_DISABLE_COMPOSITING_MODE=1 PADDOCK_APP_BIN="$PWD/target/debug/paddock-app" \
  xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- "$PYTHON" -m pytest -p no:cacheprovider -v tests/tauri "$@"
