"""Headless Chromium driven over the Chrome DevTools protocol on a pipe (--remote-debugging-pipe).

Standard library only: no WebDriver, no websocket client, no browser download. Chromium reads JSON commands,
each ended by a NUL byte, from file descriptor 3 and writes replies and events the same way to descriptor 4.
"""
from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-pipe"]


SKIP_MESSAGE = ("no Chromium here: the browser tests are skipped. `make test` installs Debian's 'chromium' package; "
                "Ubuntu has Chromium only as a snap, so install Chromium or Google Chrome and set CHROMIUM=/path/to/it")


def find_chromium() -> str | None:
    """$CHROMIUM, else the first of CHROMIUM_NAMES on PATH, else None (see SKIP_MESSAGE)."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"]) or os.environ["CHROMIUM"]
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; `call` sends a DevTools command to that page and waits for it."""

    def __init__(self, executable: str, width: int = 1300, height: int = 850, timeout: float = 20.0):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True)
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Copies at 10 and above, so putting them on 3 and 4 in the child cannot overwrite one with the other.
        high_r, high_w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)

        def on_fds_3_and_4():
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=on_fds_3_and_4)
        for fd in (to_chrome_r, from_chrome_w, high_r, high_w):
            os.close(fd)
        self._write, self._read = to_chrome_w, from_chrome_r
        self._buffer = b""
        self._ids = itertools.count(1)
        self.console: list[str] = []
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        except Exception:
            self.close()
            raise

    def _messages(self, deadline: float):
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                yield json.loads(raw)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._read], [], [], remaining)[0]:
                raise CdpError(f"Chromium did not answer within {self.timeout} s")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise CdpError(f"Chromium closed the DevTools pipe (exit code {self.process.poll()})")
            self._buffer += chunk

    def _call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        for reply in self._messages(time.monotonic() + self.timeout):
            if reply.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in
                                             reply["params"].get("args", [])))
            elif reply.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(reply["params"]["exceptionDetails"])[:500])
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise AssertionError("unreachable")

    def call(self, method: str, params: dict | None = None) -> dict:
        return self._call(method, params, self.session)

    def evaluate(self, expression: str):
        """Value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CdpError(f"JavaScript error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError(f"timed out waiting for {expression!r} (console: {self.console[-5:]})")
            time.sleep(0.05)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def click(self, x: float, y: float, button: str = "left") -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": button,
                                                   "buttons": 1 if kind == "mousePressed" else 0,
                                                   "clickCount": 0 if kind == "mouseMoved" else 1})

    def screenshot(self, path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        finally:
            for fd in (getattr(self, "_write", None), getattr(self, "_read", None)):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            for _ in range(10):  # Chromium's helper processes can still write to the profile for a moment
                try:
                    shutil.rmtree(self.profile.name)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.2)
            self.profile.cleanup()  # ignore_cleanup_errors: a left-over temporary profile must not fail a test

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
