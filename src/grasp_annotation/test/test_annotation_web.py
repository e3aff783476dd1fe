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
