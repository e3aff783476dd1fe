"""grasp_core.fileio.atomic_write: the old file or the new one, and no temp file left behind on any failure
(issue 11, defect 9: a full disk left `.<name>.tmp` behind)."""
import errno
import os

import pytest

from grasp_core import fileio
from grasp_core.fileio import atomic_write


def test_round_trip_replaces_the_file(tmp_path):
    path = tmp_path / "x.json"
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace", "interrupt"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "dataset.json"
    atomic_write(path, b"old content")
    if fail_at == "write":
        class FullFile:
            def __init__(self, name, mode):
                self._f = open(name, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

            def write(self, data):
                self._f.write(data[:3])  # part of it made it to the disk
                _disk_full()
        monkeypatch.setattr(fileio, "open", FullFile, raising=False)
    elif fail_at == "fsync":
        monkeypatch.setattr(fileio.os, "fsync", _disk_full)
    elif fail_at == "replace":
        monkeypatch.setattr(fileio.os, "replace", _disk_full)
    else:
        def interrupted(*args):
            raise KeyboardInterrupt
        monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt if fail_at == "interrupt" else OSError) as info:
        atomic_write(path, b"new content")
    if fail_at != "interrupt":
        assert info.value.errno == errno.ENOSPC  # the error is raised as it came
    monkeypatch.undo()
    assert path.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.json"], os.listdir(tmp_path)
