"""The annotation web tool: its HTTP API, crash safety (SIGKILL), and the page itself in headless Chromium."""
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from grasp_core.dataset import load_dataset

sys.path.insert(0, os.path.dirname(__file__))
from annotation_fixtures import BOXES, TABLE_RGB, make_dataset  # noqa: E402
from chromium_cdp import SKIP_MESSAGE, Chromium, find_chromium  # noqa: E402

from grasp_annotation.annotations import AnnotationSession  # noqa: E402
from grasp_annotation.web import AnnotationServer  # noqa: E402


def _post(url, edit):
    request = urllib.request.Request(url + "api/edit", json.dumps(edit).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read()


@pytest.fixture
def server(tmp_path):
    make_dataset(tmp_path / "d", num_samples=3)
    server = AnnotationServer(AnnotationSession(tmp_path / "d"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_http_api_edits_and_serves_images_and_the_live_label(server):
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    assert b"<canvas" in _get(url)
    color = _png(_get(url + "api/sample/0/color.png"))
    assert color.shape == (64, 80, 3) and tuple(color[0, 0][::-1]) == TABLE_RGB
    empty_label = _png(_get(url + "api/sample/0/label.png"))
    assert empty_label.shape == (64, 80, 4) and empty_label[..., 3].max() == 0
    status, reply = _post(url, {"op": "add", "sample": 0, "u": 15.5, "v": 15.5})
    assert status == 200
    assert reply["state"]["samples"][0] == {"id": "000000", "points": [[15.5, 15.5]], "sigmas": [6.0]}
    label = _png(_get(url + "api/sample/0/label.png"))
    alpha = label[..., 3]
    assert np.unravel_index(alpha.argmax(), alpha.shape) in {(15, 15), (15, 16), (16, 15), (16, 16)}
    assert alpha[50, 70] == 0  # far from the point: transparent
    status, reply = _post(url, {"op": "sigma", "sample": 0, "point": 5, "sigma": 3})
    assert status == 400 and "no point #5" in reply["error"]
    assert json.loads(_get(url + "api/state"))["revision"] == 1
    with pytest.raises(urllib.error.HTTPError):
        _get(url + "api/sample/9/color.png")
    # Another site's page cannot edit: a form post is refused, and so is a foreign Host name.
    form = urllib.request.Request(url + "api/edit", b"op=undo", {"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError, match="415"):
        urllib.request.urlopen(form, timeout=10)
    rebound = urllib.request.Request(url + "api/state", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(rebound, timeout=10)
    assert json.loads(_get(url + "api/state"))["revision"] == 1


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_stopped_or_killed_server_keeps_every_click_it_acknowledged(tmp_path, stop):
    make_dataset(tmp_path / "d", num_samples=3)
    proc = subprocess.Popen([sys.executable, "-m", "grasp_annotation.web", str(tmp_path / "d"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() + proc.stdout.readline()
        assert "http://127.0.0.1:" in line, proc.stderr.read() if proc.poll() is not None else line
        url = line[line.index("http://"):].split()[0]
        rng = np.random.default_rng(4)
        clicks = {0: [], 1: [], 2: []}
        for _ in range(15):
            i = int(rng.integers(0, 3))
            u, v = round(float(rng.uniform(0, 79)), 2), round(float(rng.uniform(0, 63)), 2)
            status, _ = _post(url, {"op": "add", "sample": i, "u": u, "v": v})
            assert status == 200
            clicks[i].append([u, v])
        status, _ = _post(url, {"op": "sigma", "sample": 0, "point": 0, "sigma": 11.5, "gesture": "w"})
        assert status == 200
    finally:
        proc.send_signal(stop)
        proc.wait(timeout=60)  # generous: CI machines are shared
    # SIGKILL: killed where it stood; Ctrl-C (SIGINT) and SIGTERM: a clean exit that says where the data is.
    assert proc.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 0), proc.stderr.read()
    dataset = load_dataset(tmp_path / "d")
    for i, points in clicks.items():
        assert dataset.samples[i].points.tolist() == points
    assert dataset.samples[0].sigmas[0] == 11.5
    assert not list((tmp_path / "d").glob(".*.tmp"))


def test_the_page_in_headless_chromium_adds_a_point_on_click_and_updates_the_overlay(server, tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.skip(SKIP_MESSAGE)
    with Chromium(executable) as browser:
        browser.navigate(server.url)
        browser.wait_for("window.annotator && annotator.ready && annotator.overlayRevision === 0 && "
                         "!!annotator.images['0:color']")
        left, top, scale = browser.evaluate(
            "(() => { const r = document.getElementById('canvas').getBoundingClientRect();"
            " return [r.left, r.top, annotator.scale]; })()")
        assert scale >= 2, "the page should enlarge a small heightmap"
        u0, v0, u1, v1 = BOXES[0]
        u, v = (u0 + u1 - 1) / 2, (v0 + v1 - 1) / 2
        x, y = (u + 0.5) * scale, (v + 0.5) * scale
        pixel = (f"Array.from(document.getElementById('canvas').getContext('2d')"
                 f".getImageData({x - scale}, {y}, 1, 1).data)")
        before = browser.evaluate(pixel)
        browser.screenshot(tmp_path / "before.png")
        browser.click(left + x, top + y)
        browser.wait_for("annotator.state.samples[0].points.length === 1 && annotator.overlayRevision === 1 "
                         "&& annotator.pending === 0")
        state = server.session.state()["samples"][0]
        assert state["points"] == [[u, v]] and state["sigmas"] == [6.0]
        after = browser.evaluate(pixel)
        browser.screenshot(tmp_path / "after.png")
        # Just left of the clicked centre the label is near 1: the overlay's colour now covers the object.
        assert np.abs(np.array(after[:3]) - np.array(before[:3])).sum() > 60, (before, after)
        assert "1 / 3 annotated" in browser.evaluate("document.getElementById('progress').textContent")
        assert browser.evaluate("document.getElementById('saved').className") == "ok"
        # The keyboard works too: Ctrl+Z undoes the click, and the overlay goes back.
        browser.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "z", "code": "KeyZ", "modifiers": 2,
                                                "windowsVirtualKeyCode": 90})
        browser.wait_for("annotator.state.samples[0].points.length === 0 && annotator.overlayRevision === 2")
        assert server.session.state()["samples"][0]["points"] == []
        assert browser.evaluate(pixel) == before
        assert not [m for m in browser.console if m.startswith("exception")], browser.console


# ------------------------------------------------------------------------------------------------------------
# Limits (issue 11, defect 8): localhost only, but a browser tab can still send anything

def _raw(server, request: bytes, timeout: float = 60.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes the connection (or `timeout`)."""
    import socket

    with socket.create_connection(server.server_address, timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):  # refusing a body it did not read may reset
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _edit_request(server, body: bytes, length: str | None = None) -> bytes:
    host = f"127.0.0.1:{server.server_address[1]}"
    header = f"POST /api/edit HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    if length is not None:
        header += f"Content-Length: {length}\r\n"
    return (header + "Connection: close\r\n\r\n").encode() + body


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("length,status,words", [
    ("-1", 400, b"non-negative integer"), ("abc", 400, b"non-negative integer"), (None, 411, b"Content-Length"),
    ("300000000", 413, b"at most 65536 bytes"), ("9" * 5000, 413, b"at most 65536 bytes"),
])
def test_a_bad_or_huge_content_length_is_answered_without_reading_the_body(server, length, status, words):
    reply = _raw(server, _edit_request(server, b'{"op": "undo"}', length))  # was: blocked, or 300 MB buffered
    assert _status(reply) == status and words in reply, reply[:300]
    assert json.loads(_get(server.url + "api/state"))["revision"] == 0


def test_a_body_larger_than_the_cap_is_refused_before_it_is_read(server):
    body = json.dumps({"op": "add", "sample": 0, "u": 1, "v": 1, "gesture": "x" * 200_000}).encode()
    reply = _raw(server, _edit_request(server, body, str(len(body))))
    assert _status(reply) == 413
    assert server.session.state()["samples"][0]["points"] == []


@pytest.mark.parametrize("body,words", [
    (b"[" * 60000, "nested too deeply"),
    (b'{"op": "add", "sample": 0, "u": ' + b"[" * 20000 + b"]" * 20000 + b', "v": 1}', "nested too deeply"),
    (b'{"op": "add", "sample": 0, "u": [1], "v": 1}', "'u' must be an integer or a number"),
    (b'{"op": "add", "sample": 0, "u": true, "v": 1}', "'u' must be an integer or a number, got true"),
    (b'{"op": "add", "sample": 0, "u": 3, "v": false}', "'v' must be an integer or a number"),
    (b'{"op": "add", "sample": 0, "u": "3", "v": 1}', "'u' must be an integer or a number"),
    (b'{"op": "add", "sample": true, "u": 3, "v": 1}', "'sample' must be an integer"),
    (b'{"op": "add", "sample": 0, "u": 3, "v": 1, "sigma": true}', "'sigma' must be an integer or a number or null"),
    (b'{"op": "add", "sample": 0, "u": 3, "v": 1, "note": "hi"}', "unknown edit field 'note'"),
    (b'{"op": ["add"]}', "'op' must be a string"),
    (b'"add"', "must be a JSON object"),
    (b'\xff\xfe{"op"', "not UTF-8"),
    # Issue 23: valid JSON of an add in UTF-16 / UTF-32 (json.loads guesses those from the bytes) was stored, 200.
    ('{"op": "add", "sample": 0, "u": 3, "v": 1}'.encode("utf-16"), "not UTF-8"),
    ('{"op": "add", "sample": 0, "u": 3, "v": 1}'.encode("utf-16-le"), "not UTF-8"),
    ('{"op": "add", "sample": 0, "u": 3, "v": 1}'.encode("utf-32"), "not UTF-8"),
    ('{"op": "add", "sample": 0, "u": 3, "v": 1}'.encode("utf-8-sig"), "byte order mark"),
])
def test_bad_json_and_wrong_types_are_clear_refusals(server, body, words):
    reply = _raw(server, _edit_request(server, body, str(len(body))))
    assert _status(reply) == 400, reply[:300]
    error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    assert words in error, error
    assert server.session.state()["samples"][0]["points"] == []  # JSON true was stored as coordinate 1.0


def test_a_client_that_stalls_mid_body_only_holds_its_own_connection(server, monkeypatch):
    import socket

    from grasp_annotation.web import AnnotationHandler
    monkeypatch.setattr(AnnotationHandler, "timeout", 2)
    host = f"127.0.0.1:{server.server_address[1]}"
    with socket.create_connection(server.server_address, timeout=60) as stalled:
        stalled.sendall(f"POST /api/edit HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        "Content-Length: 100\r\n\r\n{\"op\"".encode())
        status, reply = _post(server.url, {"op": "add", "sample": 1, "u": 3, "v": 4})  # others are served
        assert status == 200 and reply["state"]["samples"][1]["points"] == [[3.0, 4.0]]
        assert stalled.recv(100) == b""  # after the handler's timeout the stalled connection is closed


def test_gesture_ids_are_bounded_and_so_is_the_undo_history(tmp_path, monkeypatch):
    from grasp_annotation import annotations
    from grasp_annotation.annotations import MAX_UNDO

    make_dataset(tmp_path / "d", num_samples=1)
    session = AnnotationSession(tmp_path / "d")
    monkeypatch.setattr(annotations, "write_annotations", lambda path, samples: None)  # 1500 edits: skip the fsyncs
    session.add(0, 10, 10, 5.0)
    with pytest.raises(ValueError, match="gesture must be a string of at most 64 characters"):
        session.move(0, 0, 11, 11, gesture="g" * 5_000_000)  # was: kept in the undo history every time
    with pytest.raises(ValueError, match="gesture must be a string"):
        session.set_sigma(0, 0, 6.0, gesture=7)
    with pytest.raises(ValueError, match="point coordinates must be numbers, got u=True"):
        session.add(0, True, 3)
    with pytest.raises(ValueError, match="sigma must be a number"):
        session.add(0, 3, 3, sigma=True)
    for i in range(MAX_UNDO + 50):
        session.set_sigma(0, 0, 5.0 + (i % 7), gesture=None)
    assert len(session._undo) == MAX_UNDO
    session._undo.clear()
    many = annotations.MAX_POINTS_PER_SAMPLE
    for i in range(many - 1):
        session.add(0, i % 70, (i // 70) % 60, 2.0)
    with pytest.raises(ValueError, match=f"the most one image may hold is {many}"):
        session.add(0, 1, 1, 2.0)
