"""config/ur3_real.yaml's workspace is within the UR3's top-down reach (issue 24: VPG's UR5 box was not).

For every corner and the centre of the heightmap_node's box, at every jaw angle the grasp can have (the yaw is
folded into [-pi/2, pi/2)), the flange must reach, with the tool pointing down, both the lowest grasp
(`min_grasp_z` + `tcp_offset`) and the pre-grasp above the highest surface (`surface_z_max` - `grasp_depth` +
`tcp_offset` + `approach_height`). Inverse kinematics by least squares on the UR3's DH parameters
(grasp_core.sim.ur_kinematics), from elbow-up seeds pointing at the target. Collisions are MoveIt's business.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.optimize import least_squares

from grasp_core.sim.ur_kinematics import UR3, flange_pose

ROOT = Path(__file__).resolve().parents[1]
ARM_SEEDS = [(-1.2, 1.5, -1.9), (-0.6, 0.6, -1.5), (-1.8, 2.2, -1.9)]  # shoulder lift, elbow, wrist 1: elbow up


def seeds(target):
    """Joint seeds around the arm pointing at `target` (pan), with the wrist turned every quarter."""
    pan = math.atan2(target[1], target[0])
    for offset in (0.0, 0.3, -0.3, math.pi):
        for lift, elbow, wrist in ARM_SEEDS:
            for turn in (0.0, math.pi / 2, -math.pi / 2, math.pi):
                yield np.array([pan + offset, lift, elbow, wrist, -math.pi / 2, turn])


def tool_down(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.0, -1.0, -1.0])


def reachable(position_base_link, yaw: float) -> bool:
    # The UR controller's `base` (the DH base frame) is base_link turned 180 deg about z.
    target = np.array([-position_base_link[0], -position_base_link[1], position_base_link[2]])
    rotation = tool_down(yaw + math.pi)
    for seed in seeds(target):
        def residual(q):
            pose = flange_pose(UR3, q)
            return np.concatenate([(pose[:3, 3] - target) * 10.0, (pose[:3, :3] - rotation).ravel()])
        if np.linalg.norm(least_squares(residual, seed).fun) < 1e-5:
            return True
    return False


def cell():
    sections = yaml.safe_load((ROOT / "config" / "ur3_real.yaml").read_text())
    heightmap = sections["/**/heightmap_node"]["ros__parameters"]
    moveit = sections["/**/executor_node"]["ros__parameters"]["moveit"]
    return heightmap, moveit


def heights(moveit) -> tuple[float, float]:
    lowest = moveit["min_grasp_z"] + moveit["tcp_offset"]
    highest = moveit["surface_z_max"] - moveit["grasp_depth"] + moveit["tcp_offset"] + moveit["approach_height"]
    return lowest, highest


@pytest.mark.parametrize("corner", ["x_min,y_min", "x_min,y_max", "x_max,y_min", "x_max,y_max", "centre"])
def test_the_real_workspace_is_reachable_top_down(corner):
    heightmap, moveit = cell()
    if corner == "centre":
        x, y = (heightmap["x_min"] + heightmap["x_max"]) / 2, (heightmap["y_min"] + heightmap["y_max"]) / 2
    else:
        x, y = (heightmap[key] for key in corner.split(","))
    for z in heights(moveit):
        for yaw in np.linspace(-math.pi / 2, math.pi / 2, 4, endpoint=False):
            assert reachable((x, y, z), yaw), f"({x}, {y}, {z:.3f}) at jaw yaw {yaw:.2f} is out of the UR3's reach"


def test_vpgs_ur5_workspace_is_not():
    """The check can fail: the far corner of VPG's real workspace (base x 0.748, y 0.224) is out of reach."""
    _, moveit = cell()
    assert not reachable((-0.748, 0.224, heights(moveit)[0]), 0.0)
