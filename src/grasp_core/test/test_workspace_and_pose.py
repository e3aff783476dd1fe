import math

import numpy as np
import pytest

from grasp_core.grasp_pose import fold_jaw_yaw, quaternion_to_angle, rotation_angle, top_down_quaternion
from grasp_core.workspace import VPG_SIM_WORKSPACE, WorkspaceLimits


def test_vpg_workspace_is_224_square_at_2mm():
    assert VPG_SIM_WORKSPACE.shape == (224, 224)
    assert VPG_SIM_WORKSPACE.with_resolution(0.004).shape == (112, 112)


def test_pixel_point_round_trip_and_vpg_convention():
    ws = WorkspaceLimits(0.3, 0.748, -0.224, 0.224, -0.255, -0.1, 0.002)
    p = ws.pixel_to_point(10, 200, height=0.05)
    np.testing.assert_allclose(p, [0.3 + 10 * 0.002, -0.224 + 200 * 0.002, -0.255 + 0.05])
    assert ws.point_to_pixel(p[0], p[1]) == (10, 200)
    assert ws.point_to_pixel(0.3, -0.224) == (0, 0)


@pytest.mark.parametrize("x,y", [(0.0, 0.0), (0.75, 0.0), (0.5, 0.3), (float("nan"), 0.0)])
def test_point_outside_or_nan_is_rejected(x, y):
    ws = WorkspaceLimits(0.3, 0.748, -0.224, 0.224, -0.255, -0.1)
    with pytest.raises(ValueError):
        ws.point_to_pixel(x, y)


def test_bad_limits_are_rejected():
    with pytest.raises(ValueError, match="min < max"):
        WorkspaceLimits(1.0, 0.0, 0, 1, 0, 1)
    with pytest.raises(ValueError, match="resolution"):
        WorkspaceLimits(0, 1, 0, 1, 0, 1, resolution=0)
    with pytest.raises(ValueError, match="missing"):
        WorkspaceLimits.from_dict({"x_min": 0})


def test_dict_round_trip():
    assert WorkspaceLimits.from_dict(VPG_SIM_WORKSPACE.as_dict()) == VPG_SIM_WORKSPACE


def _rotate(q, v):
    x, y, z, w = q
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return r @ np.asarray(v, float)


@pytest.mark.parametrize("angle", [0.0, math.pi / 8, math.pi / 2, 2.5, 5.9])
def test_top_down_quaternion_points_tool_down_and_closes_along_angle(angle):
    q = top_down_quaternion(angle)
    assert math.isclose(np.linalg.norm(q), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(_rotate(q, [0, 0, 1]), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(_rotate(q, [1, 0, 0]), [math.cos(angle), math.sin(angle), 0], atol=1e-12)
    assert math.isclose(quaternion_to_angle(q), angle % (2 * math.pi), abs_tol=1e-9)


@pytest.mark.parametrize("angle", [0.0, 1.0, math.pi / 2, 2.0, math.pi, 4.0, -2.5, 7.0])
def test_fold_jaw_yaw_keeps_the_jaw_line_with_the_smallest_wrist_turn(angle):
    yaw = fold_jaw_yaw(angle)
    assert -math.pi / 2 <= yaw < math.pi / 2
    # Same closing line: the folded yaw differs from the angle by a whole number of half turns.
    turns = (angle - yaw) / math.pi
    assert math.isclose(turns, round(turns), abs_tol=1e-9)


def test_rotation_angle_and_non_top_down_quaternion():
    assert rotation_angle(4, 16) == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError):
        rotation_angle(16, 16)
    with pytest.raises(ValueError, match="top-down"):
        quaternion_to_angle((0.0, 0.0, 0.0, 1.0))
