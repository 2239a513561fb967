#!/usr/bin/env python3
"""A fake Hugging Face hub for Paddock's download tests (Python 3 standard library only).

Repos are folders: --root DIR serves DIR/<owner>/<name>/** as the repo <owner>/<name>, every
file as an LFS file of revision main. Routes, shaped like huggingface.co's:

  GET /api/models/<owner>/<name>/tree/main?recursive=true   JSON entries, paged with a Link header
  GET /<owner>/<name>/resolve/main/<path>                   302 to /cdn/<sha256>, X-Linked-* headers
  GET /cdn/<sha256>                                          the bytes; Range gives 206
  GET /_fakehub/stats                                        {"cdn_bytes": n, "ranges": [...]}: what was served

Errors as the hub sends them: 404 {"error": ...} with X-Error-Code RepoNotFound or EntryNotFound,
401 with X-Error-Code GatedRepo for a --gated repo asked without `Authorization: Bearer`.
"""

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Hub:
    """State shared by the request threads."""

    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.gated = set(args.gated)
        self.page_size = args.page_size
        self.throttle = args.throttle
        self.fail_after = args.fail_after
        self.corrupt = args.corrupt
        self.ignore_range = args.ignore_range
        self.lock = threading.Lock()
        self.hashes = {}  # (path, size, mtime) -> sha256
        self.blobs = {}  # sha256 -> path
        self.cdn_bytes = 0
        self.ranges = []

    def repo_dir(self, owner, name):
        if not all(part and part not in (".", "..") for part in (owner, name)):
            return None
        path = os.path.join(self.root, owner, name)
        return path if os.path.isdir(path) else None

    def sha256(self, path):
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            if key in self.hashes:
                return self.hashes[key]
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        with self.lock:
            self.hashes[key] = sha
            self.blobs[sha] = path
        return sha

    def entries(self, repo_dir):
        """Every folder and file of a repo, as the tree API lists them (recursive)."""
        out = []
        for folder, dirs, files in os.walk(repo_dir, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = os.path.relpath(folder, repo_dir).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            for d in dirs:
                out.append({"type": "directory", "oid": COMMIT, "size": 0, "path": prefix + d})
            for f in sorted(files):
                if f.startswith("."):
                    continue
                path = os.path.join(folder, f)
                size = os.path.getsize(path)
                sha = self.sha256(path)
                out.append({
                    "type": "file",
                    "oid": hashlib.sha1(sha.encode()).hexdigest(),
                    "size": size,
                    "path": prefix + f,
                    "lfs": {"oid": sha, "size": size, "pointerSize": 134},
                })
        return out

    def take_fail_after(self):
        """The byte count after which to drop this response, once per server (--fail-after)."""
        with self.lock:
            limit, self.fail_after = self.fail_after, None
        return limit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: Hub
    head_only = False

    def log_message(self, fmt, *args):
        sys.stderr.write("fakehub: " + (fmt % args) + "\n")

    def do_HEAD(self):
        # The same answer as GET without its body, as huggingface_hub's metadata requests expect.
        self.head_only = True
        self.do_GET()

    def send_json(self, status, value, headers=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, val in headers:
            self.send_header(key, val)
        self.end_headers()
        if not self.head_only:
            self.wfile.write(body)

    def repo_error(self, owner, name):
        """The error for a missing or gated repo, or None when it may be read."""
        repo = f"{owner}/{name}"
        if self.hub.repo_dir(owner, name) is None:
            self.send_json(404, {"error": "Repository not found"}, [("X-Error-Code", "RepoNotFound")])
            return True
        auth = self.headers.get("Authorization", "")
        if repo in self.hub.gated and not auth.startswith("Bearer "):
            message = (f"Access to model {repo} is restricted. You must have access to it and be "
                       "authenticated to access it. Please log in.")
            self.send_json(401, {"error": message},
                           [("X-Error-Code", "GatedRepo"), ("X-Error-Message", message)])
            return True
        return False

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        query = urllib.parse.parse_qs(url.query)
        if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4:] == ["tree", "main"]:
            self.tree(parts[2], parts[3], query)
        elif len(parts) > 4 and parts[2:4] == ["resolve", "main"]:
            self.resolve(parts[0], parts[1], "/".join(parts[4:]))
        elif len(parts) == 2 and parts[0] == "cdn":
            self.cdn(parts[1])
        elif parts == ["_fakehub", "stats"]:
            with self.hub.lock:
                self.send_json(200, {"cdn_bytes": self.hub.cdn_bytes, "ranges": self.hub.ranges})
        else:
            self.send_json(404, {"error": "Not found"})

    def tree(self, owner, name, query):
        if self.repo_error(owner, name):
            return
        if query.get("recursive") != ["true"]:
            self.send_json(400, {"error": "fakehub only lists recursively"})
            return
        entries = self.hub.entries(self.hub.repo_dir(owner, name))
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + self.hub.page_size]
        headers = []
        if start + self.hub.page_size < len(entries):
            host = self.headers.get("Host")
            next_url = (f"http://{host}/api/models/{owner}/{name}/tree/main?recursive=true"
                        f"&cursor={start + self.hub.page_size}")
            headers.append(("Link", f'<{next_url}>; rel="next"'))
        self.send_json(200, page, headers)

    def resolve(self, owner, name, path):
        if self.repo_error(owner, name):
            return
        full = os.path.join(self.hub.repo_dir(owner, name), path)
        if any(p.startswith(".") or not p for p in path.split("/")) or not os.path.isfile(full):
            self.send_json(404, {"error": "Entry not found"}, [("X-Error-Code", "EntryNotFound")])
            return
        sha = self.hub.sha256(full)
        self.send_response(302)
        self.send_header("Location", f"/cdn/{sha}")
        self.send_header("X-Linked-Size", str(os.path.getsize(full)))
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def cdn(self, sha):
        with self.hub.lock:
            path = self.hub.blobs.get(sha)
        if path is None:
            self.send_json(404, {"error": "Blob not found"})
            return
        total = os.path.getsize(path)
        range_header = self.headers.get("Range")
        with self.hub.lock:
            self.hub.ranges.append(range_header)
        start = 0
        if range_header and not self.hub.ignore_range:
            start = parse_range(range_header, total)
            if start is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(total - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{sha}"')
        self.end_headers()
        if self.head_only:
            return
        with open(path, "rb") as f:
            f.seek(start)
            self.send_body(f, start, total)

    def send_body(self, f, start, total):
        """Streams the file from `start`; with --corrupt the middle byte is flipped."""
        fail_after = self.hub.take_fail_after()
        sent = 0
        began = time.monotonic()
        while start + sent < total:
            want = CHUNK if fail_after is None else max(0, min(CHUNK, fail_after - sent))
            chunk = bytearray(f.read(want))
            if want and not chunk:
                break  # the file shrank under us
            flip = total // 2 - (start + sent)
            if self.hub.corrupt and 0 <= flip < len(chunk):
                chunk[flip] ^= 0xFF
            with self.hub.lock:  # counted first, so a client that has all bytes sees them counted
                self.hub.cdn_bytes += len(chunk)
            try:
                self.wfile.write(chunk)
            except OSError:
                return  # the client went away (a cancelled download)
            sent += len(chunk)
            if fail_after is not None and sent >= fail_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # mid-body: the client sees a truncated response
                return
            if self.hub.throttle:
                ahead = sent / self.hub.throttle - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)


def parse_range(header, total):
    """The start of `bytes=N-` (the only form downloads send); None when not satisfiable."""
    unit, _, spec = header.partition("=")
    first, _, _ = spec.partition("-")
    if unit.strip() != "bytes" or not first.isdigit() or int(first) >= total:
        return None
    return int(first)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder of repos: ROOT/<owner>/<name>/<files>")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--gated", action="append", default=[], metavar="OWNER/NAME",
                        help="answer 401 for this repo unless a Bearer token is sent (repeatable)")
    parser.add_argument("--page-size", type=int, default=1000, help="tree entries per page")
    parser.add_argument("--throttle", type=int, default=0, metavar="BYTES_PER_SEC",
                        help="serve each file body at most this fast")
    parser.add_argument("--fail-after", type=int, default=None, metavar="BYTES",
                        help="drop the connection after this many body bytes, once")
    parser.add_argument("--corrupt", action="store_true", help="serve every file with one byte flipped")
    parser.add_argument("--ignore-range", action="store_true",
                        help="answer every Range request with 200 and the whole file")
    args = parser.parse_args()

    Handler.hub = Hub(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
