"""The annotation tool: a small local web page (127.0.0.1 only) to click object centres on each heightmap.

Works without a desktop: run it on the robot computer and open the printed address in any browser (over ssh:
`ssh -L 8765:127.0.0.1:8765 robot-pc`). Standard library only (http.server); the page is plain HTML + JS.

    python -m grasp_annotation.web DATASET [--port 8765]

Every change is written to DATASET/dataset.json before the page hears back (AnnotationSession), so stopping
the server any way at all, Ctrl-C or a crash, loses nothing the page showed as saved.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import webbrowser
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from grasp_core.dataset import DatasetError

from grasp_annotation.annotations import AnnotationSession, EditResult
from grasp_annotation.overlay import depth_rgb, encode_png, label_rgba

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# An edit is a few dozen bytes of flat JSON; anything much larger is refused before it is read.
MAX_BODY_BYTES = 64 * 1024
EDIT_FIELDS = {"op": (str,), "sample": (int,), "point": (int,), "u": (int, float), "v": (int, float),
               "sigma": (int, float, type(None)), "gesture": (str, type(None))}
_IMAGE_PATH = re.compile(r"^/api/sample/(\d+)/(color|depth|label)\.png$")


@lru_cache(maxsize=1)
def page() -> bytes:
    return resources.files("grasp_annotation").joinpath("static/index.html").read_bytes()


class AnnotationServer(ThreadingHTTPServer):
    """HTTP server bound to the loopback interface, holding one AnnotationSession."""

    daemon_threads = True

    def __init__(self, session: AnnotationSession, port: int = DEFAULT_PORT, verbose: bool = False):
        self.session = session
        self.verbose = verbose
        self._image_cache: dict[tuple[int, str], bytes] = {}
        self._cache_lock = threading.Lock()
        super().__init__((HOST, port), AnnotationHandler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def image_png(self, index: int, kind: str) -> bytes:
        """The colour or depth view of a sample as PNG (made once), or its current label overlay (every time)."""
        sample = self.session.sample(index)
        if kind == "label":
            return encode_png(label_rgba(sample.depth.shape, sample.points, sample.sigmas))
        with self._cache_lock:
            if (index, kind) not in self._image_cache:
                image = sample.color if kind == "color" else depth_rgb(sample.depth)
                self._image_cache[(index, kind)] = encode_png(image)
            return self._image_cache[(index, kind)]


class AnnotationHandler(BaseHTTPRequestHandler):
    server: AnnotationServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stall mid-request before its connection (one thread) is dropped

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json")

    def _trusted(self) -> bool:
        """Only this machine's own pages may talk to the tool: a Host other than the loopback address
        (DNS rebinding) is refused, and an edit must be JSON (another site's page cannot send that unasked)."""
        host = self.headers.get("Host", "").rsplit(":", 1)[0]
        if host not in (HOST, "localhost"):
            self._json(403, {"error": f"host {host!r} refused: open {self.server.url}"})
            return False
        if self.command == "POST" and self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self._json(415, {"error": "edits must be sent as application/json"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._trusted():
            return
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._send(200, page(), "text/html; charset=utf-8")
            elif path == "/api/state":
                self._json(200, self.server.session.state())
            elif match := _IMAGE_PATH.match(path):
                self._send(200, self.server.image_png(int(match.group(1)), match.group(2)), "image/png")
            else:
                self._json(404, {"error": f"no such page: {path}"})
        except ValueError as e:
            self._json(400, {"error": str(e)})

    def do_POST(self) -> None:  # noqa: N802
        if not self._trusted():
            return
        if urlsplit(self.path).path != "/api/edit":
            self._json(404, {"error": f"no such endpoint: {self.path}"})
            return
        length = self._content_length()
        if length is None:
            return
        try:
            body = self.rfile.read(length)
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or went away mid-body: nobody to answer
            return
        try:
            edit = parse_edit(body)
            result = apply_edit(self.server.session, edit)
        except (ValueError, json.JSONDecodeError) as e:
            self._json(400, {"error": str(e), "state": self.server.session.state()})
            return
        except OSError as e:  # the disk refused the save: say so loudly, the page shows "NOT SAVED"
            self._json(500, {"error": f"could not save: {e}", "state": self.server.session.state()})
            return
        self._json(200, {"sample": result.sample, "message": result.message, "state": self.server.session.state()})

    def _content_length(self) -> int | None:
        """The body's declared length, or None after answering 411/400/413 (the body is then never read)."""
        raw = self.headers.get("Content-Length")
        digits = (raw or "").strip()
        status, error = None, ""
        if raw is None:
            status, error = 411, "an edit needs a Content-Length header"
        elif not (digits.isascii() and digits.isdigit()):
            status, error = 400, f"Content-Length must be a non-negative integer, got {raw[:20]!r}"
        elif len(digits) > 12 or int(digits) > MAX_BODY_BYTES:
            status, error = 413, f"an edit is at most {MAX_BODY_BYTES} bytes, this one says {digits[:20]}"
        if status is None:
            return int(digits)
        self.close_connection = True  # an unread body must not be parsed as the next request
        self._json(status, {"error": error})
        return None


def parse_edit(body: bytes) -> dict:
    """JSON body (UTF-8, RFC 8259) -> a flat edit object whose fields all have their right types (ValueError
    otherwise). Decoded here, strictly: json.loads would guess UTF-16 or UTF-32 from the bytes and accept them."""
    try:
        text = (body or b"{}").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"the edit is not UTF-8 text: {e}; send it UTF-8 encoded") from None
    if "\0" in text:  # valid UTF-8 but never JSON: UTF-16 or UTF-32 without a byte order mark
        raise ValueError("the edit is not UTF-8 text: it holds NUL bytes (UTF-16 or UTF-32?); send it UTF-8 encoded")
    if text.startswith("\ufeff"):
        raise ValueError("the edit starts with a byte order mark: send UTF-8 without one")
    try:
        edit = json.loads(text)
    except RecursionError:
        raise ValueError("the edit's JSON is nested too deeply") from None
    if not isinstance(edit, dict):
        raise ValueError("an edit must be a JSON object")
    for key, value in edit.items():
        if key not in EDIT_FIELDS:
            raise ValueError(f"unknown edit field {key[:40]!r} (known: {', '.join(EDIT_FIELDS)})")
        if isinstance(value, bool) or not isinstance(value, EDIT_FIELDS[key]):
            kinds = " or ".join("null" if t is type(None) else {str: "a string", int: "an integer",
                                                                 float: "a number"}[t] for t in EDIT_FIELDS[key])
            raise ValueError(f"edit field {key!r} must be {kinds}, got {json.dumps(value)[:40]}")
    return edit


def apply_edit(session: AnnotationSession, edit: dict):
    """One edit from the page: {"op": "add" | "move" | "sigma" | "delete" | "undo" | "save", ...}."""
    op = edit.get("op")
    if op == "add":
        return session.add(edit.get("sample"), edit.get("u"), edit.get("v"), edit.get("sigma"))
    if op == "move":
        return session.move(edit.get("sample"), edit.get("point"), edit.get("u"), edit.get("v"), edit.get("gesture"))
    if op == "sigma":
        return session.set_sigma(edit.get("sample"), edit.get("point"), edit.get("sigma"), edit.get("gesture"))
    if op == "delete":
        return session.delete(edit.get("sample"), edit.get("point"))
    if op == "undo":
        return session.undo()
    if op == "save":
        session.save()
        return EditResult(None, "saved")
    raise ValueError(f"unknown edit op {op!r} (add, move, sigma, delete, undo, save)")


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="annotate", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a grasp-keypoints dataset folder (made by capture or sim_keypoints)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--height-threshold", type=float, default=0.005,
                        help="metres above the table that count as an object when estimating sigma")
    parser.add_argument("--open", action="store_true", help="open the page in this machine's web browser")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    try:
        session = AnnotationSession(args.dataset, height_threshold=args.height_threshold)
    except DatasetError as e:
        print(f"annotate: error: {e}", file=sys.stderr)
        return 2
    try:
        server = AnnotationServer(session, args.port, args.verbose)
    except OSError as e:
        print(f"annotate: error: cannot listen on {HOST}:{args.port} ({e}); try --port 0", file=sys.stderr)
        return 2
    empty = sum(len(s.points) == 0 for s in session.dataset.samples)
    print(f"annotating {session.path} ({len(session)} images, {empty} without points)\n"
          f"open {server.url} in a web browser; Ctrl-C stops (every change is saved as it is made)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C must stop the server even when the parent started us with SIGINT ignored (Python keeps an
    # inherited SIG_IGN, and the session would then only stop on SIGKILL).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        session.save()
    print(f"saved {session.path / 'dataset.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
