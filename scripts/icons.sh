#!/usr/bin/env bash
# Regenerates every icon from the one source, icons/paddock.svg:
#   icons/app/{32x32,128x128,128x128@2x,icon}.png, icon.ico, icon.icns   (Tauri's bundle icons)
#   icons/tray/{stopped,idle,generating,error}.png                        (44x44 menu-bar templates)
# Needs rsvg-convert (Debian: librsvg2-bin; macOS: brew install librsvg) and python3 (stdlib only).
# Output is byte-for-byte the same on every run, so the PNGs can be committed: Tauri embeds
# them at compile time.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v rsvg-convert >/dev/null || { echo "icons.sh: rsvg-convert not found (apt install librsvg2-bin)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p icons/app icons/tray

# The shapes inside <g id="mark" ...> ... </g>, without the group's own colour.
mark=$(sed -n '/^ *<g id="mark"/,/^ *<\/g>/p' icons/paddock.svg | sed '1d;$d')
[ -n "$mark" ] || { echo "icons.sh: no <g id=\"mark\"> in icons/paddock.svg" >&2; exit 1; }

svg() { # name, inner SVG: a 64-unit square document
  printf '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">%s</svg>\n' "$2" >"$work/$1.svg"
}
png() { # name, size, output
  rsvg-convert -w "$2" -h "$2" "$work/$1.svg" -o "$3"
}

# App icon: the mark in cream on a green tile, inset as macOS's icon grid asks (~10% margin).
svg app "<defs><linearGradient id=\"bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">
  <stop offset=\"0\" stop-color=\"#4f9160\"/><stop offset=\"1\" stop-color=\"#2a5a38\"/></linearGradient></defs>
  <rect x=\"4\" y=\"4\" width=\"56\" height=\"56\" rx=\"12.5\" fill=\"url(#bg)\"/>
  <g fill=\"#f5efe0\" transform=\"translate(32 32.5) scale(0.6) translate(-32 -32.5)\">$mark</g>"
png app 32 icons/app/32x32.png
png app 128 icons/app/128x128.png
png app 256 icons/app/128x128@2x.png
png app 512 icons/app/icon.png
for size in 16 24 48 64 1024; do png app "$size" "$work/app-$size.png"; done
cp icons/app/32x32.png "$work/app-32.png"
cp icons/app/128x128.png "$work/app-128.png"
cp icons/app/128x128@2x.png "$work/app-256.png"
cp icons/app/icon.png "$work/app-512.png"

# Tray: black on transparent (macOS template images: only alpha counts), 22 pt at @2x. The state
# is a small mark in the lower right, cut out of the gate so it reads at menu-bar size:
# idle none, stopped a square (and the gate faded), generating a dot, error a "!" in a dot.
tray() { # state, gate opacity, badge shapes, knockout shape
  svg "tray-$1" "<defs><mask id=\"cut\"><rect width=\"64\" height=\"64\" fill=\"#fff\"/>$4</mask></defs>
  <g fill=\"#000\" opacity=\"$2\" mask=\"url(#cut)\">$mark</g><g fill=\"#000\">$3</g>"
  png "tray-$1" 44 "icons/tray/$1.png"
}
tray idle 1 "" ""
tray stopped 0.45 '<rect x="43" y="43" width="18" height="18" rx="2.5"/>' \
  '<rect x="38" y="38" width="28" height="28" rx="5" fill="#000"/>'
tray generating 1 '<circle cx="52" cy="52" r="10.5"/>' '<circle cx="52" cy="52" r="15" fill="#000"/>'
tray error 1 '<path fill-rule="evenodd" d="M52 41.5a10.5 10.5 0 1 1 0 21a10.5 10.5 0 1 1 0-21z
  M50.4 44.5h3.2v10h-3.2z M52 56.3a1.9 1.9 0 1 1 0 3.8a1.9 1.9 0 1 1 0-3.8z"/>' \
  '<circle cx="52" cy="52" r="15" fill="#000"/>'

# .ico and .icns hold PNGs as they are (Windows Vista+ and macOS 10.7+ read them); written here
# because neither rsvg-convert nor a stock ImageMagick 6 writes .icns.
python3 - "$work" <<'EOF'
import struct, sys
work = sys.argv[1]
def data(size):
    with open(f"{work}/app-{size}.png", "rb") as f:
        return f.read()

# ICO: header, one 16-byte directory entry per image (0 means 256), then the PNGs.
sizes = [16, 24, 32, 48, 64, 256]
images = [data(s) for s in sizes]
out = struct.pack("<HHH", 0, 1, len(sizes))
offset = 6 + 16 * len(sizes)
for size, png in zip(sizes, images):
    out += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
    offset += len(png)
with open("icons/app/icon.ico", "wb") as f:
    f.write(out + b"".join(images))

# ICNS: "icns" + total length, then (type, length incl. 8-byte header, PNG) chunks, big-endian.
types = [("icp4", 16), ("icp5", 32), ("icp6", 64), ("ic07", 128), ("ic08", 256), ("ic09", 512),
         ("ic10", 1024), ("ic11", 32), ("ic12", 64), ("ic13", 256), ("ic14", 512)]
chunks = b"".join(t.encode() + struct.pack(">I", 8 + len(data(s))) + data(s) for t, s in types)
with open("icons/app/icon.icns", "wb") as f:
    f.write(b"icns" + struct.pack(">I", 8 + len(chunks)) + chunks)
EOF
echo "icons: $(ls icons/app | tr '\n' ' ')| tray: $(ls icons/tray | tr '\n' ' ')"
