"""Calibration files and colour/depth stamp pairing (no DDS)."""
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from grasp_perception.calibration import CameraCalibration, load_calibration, save_calibration
from grasp_perception.stamp_sync import StampPairer

MS = 1_000_000


def test_calibration_round_trip_and_matrix(tmp_path):
    rotation = Rotation.from_euler("xyz", [170, 5, -30], degrees=True)
    pose = np.eye(4)
    pose[:3, :3] = rotation.as_matrix()
    pose[:3, 3] = [-0.52, 0.03, 0.61]
    calibration = CameraCalibration.from_matrix("base_link", "camera_color_optical_frame", pose)
    path = tmp_path / "calibration.yaml"
    save_calibration(calibration, path, comment="test camera\nsecond line")
    text = path.read_text()
    assert text.startswith("# test camera\n# second line\n")
    loaded = load_calibration(path)
    assert loaded.base_frame == "base_link" and loaded.camera_frame == "camera_color_optical_frame"
    np.testing.assert_allclose(loaded.matrix(), pose, atol=1e-12)
    # A point 1 m in front of the camera lands where the rotation's third column says.
    np.testing.assert_allclose(loaded.matrix() @ [0, 0, 1, 1], np.r_[pose[:3, 2] + pose[:3, 3], 1], atol=1e-12)


def test_calibration_quaternion_is_x_y_z_w(tmp_path):
    path = tmp_path / "c.yaml"
    # Camera looking straight down, image rows along -x: Rx(180) then Rz(-90) (the simulated UR5 camera).
    path.write_text("base_frame: world\ncamera_frame: cam\ntranslation: [0, 0, 1]\n"
                    f"rotation: [{math.sqrt(0.5)}, {-math.sqrt(0.5)}, 0, 0]\n")
    m = load_calibration(path).matrix()
    np.testing.assert_allclose(m[:3, 2], [0, 0, -1], atol=1e-12)  # optical z looks down
    np.testing.assert_allclose(m[:3, 0], [0, -1, 0], atol=1e-12)  # image x (columns) runs along -y


@pytest.mark.parametrize("text,match", [
    ("base_frame: world\ncamera_frame: cam\ntranslation: [0, 0]\nrotation: [0, 0, 0, 1]\n", "translation"),
    ("base_frame: world\ncamera_frame: cam\ntranslation: [0, 0, 1]\nrotation: [0, 0, 0, 2]\n", "unit quaternion"),
    ("base_frame: world\ncamera_frame: cam\ntranslation: [0, .nan, 1]\nrotation: [0, 0, 0, 1]\n", "finite"),
    ("base_frame: ''\ncamera_frame: cam\ntranslation: [0, 0, 1]\nrotation: [0, 0, 0, 1]\n", "base_frame"),
    ("base_frame: world\ntranslation: [0, 0, 1]\nrotation: [0, 0, 0, 1]\n", r"missing \['camera_frame'\]"),
    ("- just\n- a list\n", "mapping"),
    ("base_frame: [unclosed\n", "not valid YAML"),
])
def test_bad_calibration_files_give_clear_errors(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_calibration(path)


def test_missing_calibration_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read the calibration file"):
        load_calibration(tmp_path / "nope.yaml")


def test_pairer_pairs_equal_and_close_stamps_and_drops_superseded():
    pairer = StampPairer(max_skew=0.010, queue_size=5)
    assert pairer.add("color", 100 * MS, "c100") is None
    pair = pairer.add("depth", 100 * MS, "d100")
    assert (pair.color, pair.depth, pair.skew_ns) == ("c100", "d100", 0)
    # Depth 5 ms after colour pairs; a colour 33 ms later has no partner yet.
    assert pairer.add("color", 133 * MS, "c133") is None
    assert pairer.add("color", 166 * MS, "c166") is None
    pair = pairer.add("depth", 170 * MS, "d170")
    assert (pair.color, pair.depth, pair.skew_ns) == ("c166", "d170", 4 * MS)
    # c133 can never be paired any more (depth only moves forward): it was dropped.
    assert pairer.pending() == {"color": 0, "depth": 0} and pairer.unpaired == 1


def test_pairer_respects_max_skew_and_queue_size():
    pairer = StampPairer(max_skew=0.002, queue_size=3)
    for k in range(5):
        assert pairer.add("color", (200 + 33 * k) * MS, f"c{k}") is None
    assert pairer.pending()["color"] == 3 and pairer.unpaired == 2  # the two oldest fell out
    assert pairer.add("depth", (200 + 33 * 4 + 3) * MS, "late") is None  # 3 ms > 2 ms skew
    pair = pairer.add("depth", (200 + 33 * 3 + 1) * MS, "d3")
    assert pair is None  # stamp went backwards within depth: start over, nothing paired
    assert pairer.pending() == {"color": 0, "depth": 1}


def test_pairer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_skew"):
        StampPairer(max_skew=-1)
    with pytest.raises(ValueError, match="stream"):
        StampPairer(0.01).add("infra", 0, None)
