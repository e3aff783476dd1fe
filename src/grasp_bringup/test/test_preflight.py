"""The demo's output-folder check and stall notice (issue 11, defects 3 and 9)."""
import errno
import os
from collections import namedtuple
from pathlib import Path

import pytest

from grasp_bringup import preflight
from grasp_bringup.preflight import OutputFolderError, StallWatch, check_output_folder


def test_a_writable_folder_is_created_and_left_clean(tmp_path):
    out = check_output_folder(tmp_path / "a" / "b", min_free_mb=0)
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_folder_that_cannot_be_made_or_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="cannot create the output folder"):
        check_output_folder(tmp_path / "file" / "out")
    with pytest.raises(OutputFolderError, match="is not a folder"):
        check_output_folder(tmp_path / "file")


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"), (errno.EACCES, "read-only or not yours"),
                                        (errno.ENOSPC, "the disk is full")])
def test_a_folder_that_refuses_writes(tmp_path, monkeypatch, code, words):
    def refuse(path, data):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(preflight, "atomic_write", refuse)
    with pytest.raises(OutputFolderError, match=words):
        check_output_folder(tmp_path / "out")


def test_too_little_free_space(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5 * 10**6, 5 * 10**6))
    with pytest.raises(OutputFolderError, match=r"only 5 MB free .* needs about 200 MB"):
        check_output_folder(tmp_path / "out")
    assert check_output_folder(tmp_path / "out", min_free_mb=1).is_dir()


def _read_only_folder(tmp_path) -> Path:
    """An existing folder this process cannot write in (as root, chmod does not stop writes: use sysfs)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in ("/sys/kernel", "/sys"):
        try:
            fd = os.open(os.path.join(candidate, ".grasp_probe"), os.O_CREAT | os.O_WRONLY, 0o644)
        except OSError:
            return Path(candidate)
        os.close(fd)
        os.unlink(os.path.join(candidate, ".grasp_probe"))
    pytest.skip("no read-only folder available on this machine")


def test_the_demo_refuses_a_read_only_output_folder_before_any_work(tmp_path, capsys):
    """In-process (a child process would spend minutes importing torch on a loaded machine): main() must answer
    with one clear line and exit code 2, not a traceback after rendering the dataset (the issue's report)."""
    pytest.importorskip("rclpy", reason="the demo module needs the ROS 2 environment")
    import signal

    from grasp_bringup import demo
    folder = _read_only_folder(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = demo.main(["--profile", "tiny", "--dataset-images", "2", "--output", str(folder)])
    finally:
        signal.signal(signal.SIGTERM, previous)
    output = capsys.readouterr().out
    assert code == 2, output
    assert "cannot write in the output folder" in output and "choose another with --output" in output, output
    assert "step 1/4" not in output  # nothing rendered first


def test_stall_watch_speaks_once_per_period_while_attempts_do_not_move():
    now = [0.0]
    watch = StallWatch(60.0, clock=lambda: now[0])
    Node = namedtuple("Node", "spec label log_tail")
    Spec = namedtuple("Spec", "executable")
    log = ("[INFO] attempt 88: failure\n[WARN] [executor_node]: propose_grasp refused: Q maps contain NaN or inf\n"
           "[INFO] waiting")
    nodes = [Node(Spec("executor_node"), "/robot1/executor_node", lambda n: log),
             Node(Spec("sim_node"), "/robot1/sim_node", lambda n: "failed to refused")]
    assert watch.check(89, nodes) is None
    now[0] = 59.0
    assert watch.check(89, nodes) is None
    now[0] = 61.0
    notice = watch.check(89, nodes)
    assert "no grasp attempt for 61 s (still at 89)" in notice and "Q maps contain NaN or inf" in notice
    assert "sim_node" not in notice
    now[0] = 100.0
    assert watch.check(89, nodes) is None  # said 39 s ago
    now[0] = 122.0
    assert "for 122 s" in watch.check(89, nodes)
    assert watch.check(90, nodes) is None  # an attempt came: the clock starts again
    now[0] = 150.0
    assert watch.check(90, nodes) is None
