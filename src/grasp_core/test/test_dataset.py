import json

import numpy as np
import pytest

from grasp_core.dataset import DatasetError, KeypointSample, load_dataset, save_dataset
from grasp_core.workspace import WorkspaceLimits

WS = WorkspaceLimits(0.0, 0.064, 0.0, 0.048, -0.01, 0.3, 0.002)   # 24 x 32 heightmaps


def make_samples(n=3, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        k = i + 1
        samples.append(KeypointSample(
            id=f"{i:06d}",
            color=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
            depth=rng.random((24, 32), dtype=np.float32) * 0.1,
            points=rng.random((k, 2)) * [31.9, 23.9],
            sigmas=rng.random(k) * 5 + 0.5))
    return samples


def test_round_trip_is_identical(tmp_path):
    samples = make_samples()
    camera = {"intrinsics": np.eye(3), "source": "sim", "fx": np.float64(600.0)}
    save_dataset(tmp_path / "ds", samples, WS, camera=camera)
    loaded = load_dataset(tmp_path / "ds")
    assert loaded.workspace == WS
    assert loaded.camera == {"intrinsics": np.eye(3).tolist(), "source": "sim", "fx": 600.0}
    assert len(loaded) == len(samples)
    for a, b in zip(samples, loaded.samples):
        assert a.id == b.id
        np.testing.assert_array_equal(a.color, b.color)
        assert b.depth.dtype == np.float32
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.sigmas, b.sigmas)
    index = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert index["format"] == "grasp-keypoints" and index["version"] == 1
    assert index["samples"][0]["color"] == "images/000000_color.png"
    assert not list((tmp_path / "ds").rglob(".*.tmp"))


def test_overwrite_and_no_camera(tmp_path):
    save_dataset(tmp_path, make_samples(3), WS, camera={"a": 1})
    save_dataset(tmp_path, make_samples(2, seed=1), WS)
    loaded = load_dataset(tmp_path)
    assert len(loaded) == 2 and loaded.camera is None
    np.testing.assert_array_equal(loaded[1].color, make_samples(2, seed=1)[1].color)


def write_index(path, text):
    path.mkdir(parents=True, exist_ok=True)
    (path / "dataset.json").write_text(text)


def test_missing_corrupt_foreign_and_other_version_raise(tmp_path):
    with pytest.raises(ValueError, match="dataset.json is missing"):
        load_dataset(tmp_path / "nothing")
    write_index(tmp_path / "corrupt", '{"format": "grasp-keypoints", "version": 1, "samp')
    with pytest.raises(DatasetError, match="corrupt"):       # DatasetError is a ValueError
        load_dataset(tmp_path / "corrupt")
    write_index(tmp_path / "foreign", json.dumps({"format": "coco", "version": 1}))
    with pytest.raises(ValueError, match="not a grasp-keypoints dataset.*coco"):
        load_dataset(tmp_path / "foreign")
    write_index(tmp_path / "list", "[1, 2]")
    with pytest.raises(ValueError, match="not a grasp-keypoints dataset"):
        load_dataset(tmp_path / "list")
    save_dataset(tmp_path / "v2", make_samples(1), WS)
    index = json.loads((tmp_path / "v2" / "dataset.json").read_text())
    index["version"] = 2
    write_index(tmp_path / "v2", json.dumps(index))
    with pytest.raises(ValueError, match="version 2; this code reads version 1"):
        load_dataset(tmp_path / "v2")
    with pytest.raises(ValueError, match="version 2"):       # and it is not silently overwritten
        save_dataset(tmp_path / "v2", make_samples(1), WS)


def test_missing_image_and_bad_workspace(tmp_path):
    save_dataset(tmp_path, make_samples(2), WS)
    (tmp_path / "images" / "000001_depth.npy").unlink()
    with pytest.raises(ValueError, match="000001: depth file images/000001_depth.npy is missing"):
        load_dataset(tmp_path)
    index = json.loads((tmp_path / "dataset.json").read_text())
    del index["workspace"]["x_max"]
    write_index(tmp_path, json.dumps(index))
    with pytest.raises(ValueError, match="workspace"):
        load_dataset(tmp_path)


def test_loaded_image_must_match_the_workspace(tmp_path):
    save_dataset(tmp_path, make_samples(1), WS)
    index = json.loads((tmp_path / "dataset.json").read_text())
    index["workspace"]["x_max"] = 0.066
    write_index(tmp_path, json.dumps(index))
    with pytest.raises(ValueError, match=r"heightmap is \(24, 32\) but the workspace gives \(24, 33\)"):
        load_dataset(tmp_path)


def test_refuses_foreign_folder_and_bad_samples(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        save_dataset(tmp_path, make_samples(1), WS)
    sample = make_samples(1)[0]
    with pytest.raises(ValueError, match="workspace gives"):
        save_dataset(tmp_path / "ds", [sample], WS.with_resolution(0.004))
    with pytest.raises(ValueError, match="unique"):
        save_dataset(tmp_path / "ds", [sample, sample], WS)
    with pytest.raises(ValueError, match="outside"):
        KeypointSample("a", sample.color, sample.depth, [[32.0, 3.0]], [2.0])
    with pytest.raises(ValueError, match="outside"):
        KeypointSample("a", sample.color, sample.depth, [[3.0, -0.1]], [2.0])
    with pytest.raises(ValueError, match="sigmas"):
        KeypointSample("a", sample.color, sample.depth, [[3.0, 3.0]], [0.0])
    with pytest.raises(ValueError, match="color"):
        KeypointSample("a", sample.color[:, :-1], sample.depth, [[3.0, 3.0]], [1.0])
    with pytest.raises(ValueError, match="depth"):
        KeypointSample("a", sample.color, sample.depth.astype(np.float64), [[3.0, 3.0]], [1.0])
    with pytest.raises(ValueError, match="id"):
        KeypointSample("../x", sample.color, sample.depth, [[3.0, 3.0]], [1.0])


def test_tampered_json_points_are_checked(tmp_path):
    save_dataset(tmp_path, make_samples(1), WS)
    index = json.loads((tmp_path / "dataset.json").read_text())
    index["samples"][0]["points"] = [[100.0, 1.0]]
    index["samples"][0]["sigmas"] = [1.0]
    write_index(tmp_path, json.dumps(index))
    with pytest.raises(ValueError, match="outside"):
        load_dataset(tmp_path)
    index["samples"][0]["points"], index["samples"][0]["color"] = [[1.0, 1.0]], "../../etc/passwd"
    write_index(tmp_path, json.dumps(index))
    with pytest.raises(ValueError, match="leaves the dataset folder"):
        load_dataset(tmp_path)
