import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grasp_core.replay import CorruptRecordError, Experience, ReplayStore, VPGReplaySampler

GRASP_CORE = str(Path(__file__).resolve().parents[1])


def make_experience(i: int, size: int = 16, terminal: bool | None = None) -> Experience:
    """Deterministic experience number i (the crash-test writer and the checks build the same ones)."""
    rng = np.random.default_rng(i)
    terminal = (i % 4 == 3) if terminal is None else terminal
    nxt = None if terminal else (rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                                 rng.random((size, size), dtype=np.float32))
    return Experience(
        id=f"exp-{i:05d}", source="/robot1", attempt=i,
        color_hm=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        depth_hm=rng.random((size, size), dtype=np.float32),
        rotation_index=i % 16, num_rotations=16, pixel=(i % size, (3 * i) % size),
        reward=float(i % 3 == 0), terminal=terminal,
        next_color_hm=None if nxt is None else nxt[0], next_depth_hm=None if nxt is None else nxt[1],
        model_version=i // 10, epsilon=0.5 * 0.9998 ** i, explored=bool(i % 2), predicted_q=float(rng.random()),
        failure_reason=i % 5, stamp=1.7e9 + i * 0.123)


def assert_same(a: Experience, b: Experience) -> None:
    assert a.metadata() == b.metadata()
    for name in ("color_hm", "depth_hm", "next_color_hm", "next_depth_hm"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)


def test_append_reopen_round_trip(tmp_path):
    experiences = [make_experience(i) for i in range(12)]
    with ReplayStore(tmp_path / "replay") as store:
        assert [store.append(e) for e in experiences] == list(range(12))
        assert len(store) == 12
    with ReplayStore(tmp_path / "replay") as store:
        assert len(store) == 12
        assert store.ids == [e.id for e in experiences]
        np.testing.assert_array_equal(store.rewards, [e.reward for e in experiences])
        for i, e in enumerate(experiences):
            assert_same(store[i], e)
            assert store.metadata(i) == e.metadata()
        assert store[3].next_color_hm is None and store[3].terminal
        assert_same(store[-1], experiences[-1])
        with pytest.raises(IndexError):
            store[12]
        assert store.append(make_experience(12)) == 12


def test_duplicates_are_detected_and_stored_once(tmp_path):
    with ReplayStore(tmp_path) as store:
        store.append(make_experience(0))
        store.append(make_experience(1))
        assert store.append(make_experience(0)) == 0
        assert store.duplicates == 1 and len(store) == 2
    with ReplayStore(tmp_path) as store:            # detected after a restart too (the learner re-receives)
        assert store.append(make_experience(1)) == 1
        assert store.duplicates == 1 and len(store) == 2
        assert store.index_of("exp-00001") == 1 and store.index_of("nope") is None
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_single_writer_and_read_only(tmp_path):
    writer = ReplayStore(tmp_path)
    writer.append(make_experience(0))
    with pytest.raises(ValueError, match="already open for writing"):
        ReplayStore(tmp_path)
    reader = ReplayStore(tmp_path, read_only=True)
    assert len(reader) == 1
    with pytest.raises(ValueError, match="read-only"):
        reader.append(make_experience(1))
    writer.close()
    with ReplayStore(tmp_path) as again:
        assert len(again) == 1


def test_refuses_foreign_or_damaged_directories(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        ReplayStore(tmp_path / "foreign")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "replay.json").write_text(json.dumps({"format": "grasp-replay", "version": 9}))
    with pytest.raises(ValueError, match="version 1"):
        ReplayStore(tmp_path / "other")
    with ReplayStore(tmp_path / "gap") as store:
        for i in range(3):
            store.append(make_experience(i))
    (tmp_path / "gap" / "00000001.npz").unlink()
    with pytest.raises(ValueError, match=r"missing records \[1\]"):
        ReplayStore(tmp_path / "gap")


def test_partial_record_is_ignored_and_removed(tmp_path):
    with ReplayStore(tmp_path) as store:
        store.append(make_experience(0))
    record = (tmp_path / "00000000.npz").read_bytes()
    (tmp_path / ".00000001.npz.tmp").write_bytes(record[: len(record) // 2])   # a writer died mid-write
    with ReplayStore(tmp_path) as store:
        assert len(store) == 1 and store.removed_partial == 1
        assert not list(tmp_path.glob(".*.tmp"))
        assert store.append(make_experience(1)) == 1


WRITER = """
import os, sys, time
sys.path.insert(0, {test_dir!r})
from test_replay import make_experience
import grasp_core.replay as replay
hang_after = int(sys.argv[2])
store = replay.ReplayStore(sys.argv[1])
start = len(store)
for i in range(start, start + 10000):
    if i - start == hang_after:
        # Die between fsync and rename: the complete record sits in a temp file when the parent kills us.
        def hang(*args):
            print("HANG", flush=True)
            time.sleep(60)
        replay.os.replace = hang
    index = store.append(make_experience(i, size=96))
    print(index, store.ids[index], flush=True)
"""


def run_writer_and_kill(directory: Path, hang_after: int, acks_before_kill: int, mid_write: bool):
    """Start a writer process, read its acknowledgements, SIGKILL it; return {index: id} it acknowledged.

    With mid_write, the kill is sent while a record's temp file exists (the writer is inside append)."""
    env = dict(os.environ, PYTHONPATH=GRASP_CORE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = WRITER.format(test_dir=str(Path(__file__).parent))
    proc = subprocess.Popen([sys.executable, "-c", script, str(directory), str(hang_after)],
                            stdout=subprocess.PIPE, text=True, env=env)
    acknowledged = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(acknowledged) < acks_before_kill:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            if line.startswith("HANG"):
                break
            index, exp_id = line.split()
            acknowledged[int(index)] = exp_id
        while mid_write and not list(directory.glob(".*.npz.tmp")):
            assert time.monotonic() < deadline, "the writer never started another record"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acknowledged


def test_sigkilled_writer_loses_nothing_acknowledged(tmp_path):
    directory = tmp_path / "replay"
    acknowledged = {}
    rounds = [dict(hang_after=10 ** 6, acks_before_kill=5, mid_write=False),   # between two appends
              dict(hang_after=10 ** 6, acks_before_kill=5, mid_write=True),    # while a record is being written
              dict(hang_after=10 ** 6, acks_before_kill=5, mid_write=True),
              dict(hang_after=3, acks_before_kill=10 ** 6, mid_write=False)]   # fsync'ed but never renamed
    for settings in rounds:
        acknowledged.update(run_writer_and_kill(directory, **settings))
        if settings["hang_after"] == 3:
            assert list(directory.glob(".*.npz.tmp")), "the hung writer should have left a temp file"
        with ReplayStore(directory) as store:
            assert len(store) >= max(acknowledged) + 1
            for index, exp_id in acknowledged.items():
                assert store.ids[index] == exp_id
            for index in range(len(store)):                # every record on disk is complete and correct
                assert_same(store[index], make_experience(index, size=96))
            assert not list(directory.glob(".*.tmp"))
    assert len(acknowledged) >= 5 * 3 + 3


def test_sampler_draws_opposite_outcomes_preferring_surprise():
    sampler = VPGReplaySampler(seed=1)
    rewards = [1, 0, 0, 1, 0, 1, 0, 0, 1, 1]
    surprise = [0.9, 0.1, 0.5, 0.2, 0.8, 0.05, 0.3, 0.7, 0.6, 0.4]
    for i, (r, s) in enumerate(zip(rewards, surprise)):
        sampler.add(i, r, s)
    failures = [1, 2, 4, 6, 7]          # sorted by surprise: 1 (0.1), 6 (0.3), 2 (0.5), 7 (0.7), 4 (0.8)
    draws = [sampler.sample(current_reward=1.0) for _ in range(4000)]
    assert set(draws) <= set(failures)
    freq = {i: draws.count(i) / len(draws) for i in failures}
    # Position k = round(4 x) with P(x < a) = a^2 (power 2): P(k) = ((k + 0.5)^2 - (k - 0.5)^2) / 16 for k = 1..3,
    # 0.5^2 / 16 for k = 0 and 1 - 3.5^2 / 16 for k = 4 (VPG's rounding gives the end positions half a bin).
    expected = {1: 0.25 / 16, 6: 2 / 16, 2: 4 / 16, 7: 6 / 16, 4: 3.75 / 16}
    for i in failures:
        assert freq[i] == pytest.approx(expected[i], abs=0.025), (i, freq[i], expected[i])
    assert freq[7] > freq[2] > freq[6] > freq[1] and freq[4] > freq[6]

    successes = {0, 3, 5, 8, 9}
    assert {sampler.sample(current_reward=0.0) for _ in range(200)} <= successes
    assert sampler.sample(0.0, exclude=None) is not None
    sampler.update_surprise(1, 5.0)                 # now the most surprising failure
    later = [sampler.sample(1.0) for _ in range(2000)]
    assert later.count(1) / len(later) == pytest.approx(expected[4], abs=0.03)


def test_sampler_edge_cases_and_resume():
    sampler = VPGReplaySampler(seed=7)
    assert sampler.sample(1.0) is None
    sampler.add(0, 1.0, 0.3)
    assert sampler.sample(1.0) is None                  # no opposite outcome yet
    sampler.add(1, 0.0, 0.2)
    assert sampler.sample(1.0) == 1 and sampler.sample(1.0, exclude=1) is None
    with pytest.raises(ValueError, match="next index is 2"):
        sampler.add(5, 0.0, 0.1)
    for i in range(2, 50):
        sampler.add(i, float(i % 2 == 0), (i * 37 % 11) / 11)
    for _ in range(5):
        sampler.sample(1.0)
    state = json.loads(json.dumps(sampler.state_dict()))     # survives a JSON checkpoint
    continued = [sampler.sample(i % 2) for i in range(30)]
    resumed = VPGReplaySampler(seed=999)
    resumed.load_state_dict(state)
    assert len(resumed) == 50
    assert [resumed.sample(i % 2) for i in range(30)] == continued


def test_experience_validation():
    e = make_experience(0)
    with pytest.raises(ValueError, match="next heightmaps"):
        Experience("a", "s", 0, e.color_hm, e.depth_hm, 0, 16, (0, 0), 1.0, terminal=False)
    with pytest.raises(ValueError, match="outside"):
        Experience("a", "s", 0, e.color_hm, e.depth_hm, 0, 16, (16, 0), 1.0, terminal=True)
    with pytest.raises(ValueError, match="rotation index"):
        Experience("a", "s", 0, e.color_hm, e.depth_hm, 16, 16, (0, 0), 1.0, terminal=True)
    with pytest.raises(ValueError, match="float32"):
        Experience("a", "s", 0, e.color_hm, e.depth_hm.astype(np.float64), 0, 16, (0, 0), 1.0, terminal=True)
    with pytest.raises(ValueError, match="uint8"):
        Experience("a", "s", 0, e.color_hm[:, :4], e.depth_hm, 0, 16, (0, 0), 1.0, terminal=True)
    with pytest.raises(ValueError, match="finite"):
        Experience("a", "s", 0, e.color_hm, e.depth_hm, 0, 16, (0, 0), float("nan"), terminal=True)


# ------------------------------------------------------------------------------------------------------------
# Corrupt records are quarantined, never blamed on another (issue 11, defects 6 and 7)

def rewrite_record(path: Path, meta=None, **arrays) -> None:
    """Replace a record file by hand: keep its arrays unless given, and its metadata unless `meta` is given."""
    with np.load(path, allow_pickle=False) as data:
        old = {k: data[k] for k in data.files}
    if meta is not None:
        old["meta"] = np.array(json.dumps(meta))
    old.update(arrays)
    with open(path, "wb") as f:
        np.savez_compressed(f, **old)


def flip_image_bytes(path: Path) -> None:
    """Damage the compressed colour image inside the record; its metadata entry stays readable."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"color_hm.npy") + 200
    raw[at:at + 64] = bytes(255 - b for b in raw[at:at + 64])
    path.write_bytes(bytes(raw))


def store_of(directory, n=8):
    with ReplayStore(directory) as store:
        for i in range(n):
            store.append(make_experience(i))
    return directory


@pytest.mark.parametrize("damage", ["flipped image bytes", "wrong image dtype", "truncated file"])
def test_a_record_that_cannot_be_read_is_quarantined_when_read(tmp_path, damage):
    directory = store_of(tmp_path / "replay")
    record = directory / "00000003.npz"
    if damage == "flipped image bytes":
        flip_image_bytes(record)
    elif damage == "wrong image dtype":
        rewrite_record(record, color_hm=np.zeros((16, 16, 3), np.float64))
    with ReplayStore(directory) as store:
        if damage == "truncated file":  # after the store was opened: found when the images are read
            record.write_bytes(record.read_bytes()[:300])
        assert len(store) == 8 and store.quarantined == {}
        with pytest.raises(ValueError, match=r"replay record #3 is corrupt .* quarantined: moved to") as info:
            store[3]
        assert isinstance(info.value, CorruptRecordError) and info.value.index == 3
        assert 3 in store.quarantined and math.isnan(store.rewards[3])
        assert not record.exists() and (directory / "quarantine" / "00000003.npz").is_file()  # moved, not deleted
        assert "unreadable" in (directory / "quarantine" / "00000003.reason.txt").read_text()
        for i in (0, 1, 2, 4, 5, 6, 7):  # every other record is untouched
            assert_same(store[i], make_experience(i))
        with pytest.raises(ValueError, match="#3 is corrupt"):
            store[3]  # still a hole, same answer
        assert store.append(make_experience(8)) == 8  # numbering continues past the hole
    with ReplayStore(directory) as store:  # reopened: the hole stays where it was, with its reason
        assert len(store) == 9 and list(store.quarantined) == [3] and "unreadable" in store.quarantined[3]
        assert_same(store[8], make_experience(8))
        assert make_experience(3).id not in store.ids


BAD_METADATA = {  # issue 11, defect 7: each of these was a raw KeyError/TypeError when the store was opened
    "missing id": lambda m: m.pop("id"),
    "missing reward": lambda m: m.pop("reward"),
    "metadata is a list": lambda m: [m],
    "reward is text": lambda m: m.update(reward="1.0"),
    "reward is NaN": lambda m: m.update(reward=float("nan")),
    "pixel is a number": lambda m: m.update(pixel=3),
    "unknown field": lambda m: m.update(colour="red"),
    "terminal is 1": lambda m: m.update(terminal=1),
    "rotation out of range": lambda m: m.update(rotation_index=16),
}


@pytest.mark.parametrize("damage", list(BAD_METADATA))
def test_bad_metadata_is_quarantined_when_the_store_opens(tmp_path, damage, caplog):
    directory = store_of(tmp_path / "replay")
    with ReplayStore(directory, read_only=True) as reader:
        meta = reader.metadata(5)
    edited = BAD_METADATA[damage](meta)
    rewrite_record(directory / "00000005.npz", meta=edited if isinstance(edited, list) else meta)
    with caplog.at_level("WARNING", logger="grasp_core.replay"):
        store = ReplayStore(directory)  # was: KeyError / TypeError, learner exit 1
    with store:
        assert list(store.quarantined) == [5], store.quarantined
        assert "record #5 quarantined" in caplog.text
        assert (directory / "quarantine" / "00000005.npz").is_file()
        assert len(store) == 8 and math.isnan(store.rewards[5])
        assert store.ids == [make_experience(i).id for i in range(8) if i != 5]
        for i in (0, 4, 6, 7):
            assert_same(store[i], make_experience(i))
        with pytest.raises(ValueError, match="#5 is corrupt"):
            store[5]


def test_a_read_only_store_reports_but_does_not_move(tmp_path):
    directory = store_of(tmp_path / "replay")
    flip_image_bytes(directory / "00000002.npz")
    with ReplayStore(directory, read_only=True) as store:
        with pytest.raises(ValueError, match="left in place"):
            store[2]
    assert (directory / "00000002.npz").is_file() and not (directory / "quarantine").exists()


def test_a_record_both_in_the_store_and_in_quarantine_is_refused(tmp_path):
    directory = store_of(tmp_path / "replay", n=3)
    (directory / "quarantine").mkdir()
    (directory / "quarantine" / "00000001.npz").write_bytes((directory / "00000001.npz").read_bytes())
    with pytest.raises(ValueError, match=r"records \[1\] are both in the store and in quarantine"):
        ReplayStore(directory)


def test_sampler_never_draws_a_quarantined_index():
    sampler = VPGReplaySampler(seed=0)
    for i, reward in enumerate([0.0, 1.0, math.nan, 1.0]):
        sampler.add(i, reward, float(i))
    draws = {sampler.sample(0.0) for _ in range(200)}
    assert draws == {1, 3}
    sampler.retire(3)
    assert {sampler.sample(0.0) for _ in range(50)} == {1}
    sampler.retire(1)
    assert sampler.sample(0.0) is None and sampler.retired() == [1, 2, 3]
    assert {sampler.sample(1.0) for _ in range(20)} == {0}  # NaN is never "a different reward" either
    restored = VPGReplaySampler()
    restored.load_state_dict(json.loads(json.dumps(sampler.state_dict())))  # NaN survives the JSON round trip
    assert restored.retired() == [1, 2, 3]
    with pytest.raises(ValueError, match="finite"):
        sampler.add(4, math.inf, 0.0)
