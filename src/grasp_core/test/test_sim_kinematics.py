"""The capsule arms follow Universal Robots' DH kinematics, and IK reaches the whole workspace."""
import math

import mujoco
import numpy as np
import pytest

from grasp_core.grasp_pose import rotation_matrix_z
from grasp_core.sim.camera import CameraConfig
from grasp_core.sim.gripper import TCP_SITE, GripperParams
from grasp_core.sim.ik import DlsIk
from grasp_core.sim.model_builder import LINK_NAMES, scene_xml
from grasp_core.sim.ur_kinematics import JOINT_NAMES, UR3, UR5, flange_pose, forward_kinematics, robot_params
from grasp_core.sim.world import IK_SEED, TOOL_DOWN, UR3_SIM_WORKSPACE
from grasp_core.workspace import VPG_SIM_WORKSPACE

WORKSPACES = {"ur5": VPG_SIM_WORKSPACE, "ur3": UR3_SIM_WORKSPACE}


def arm_model(robot):
    return mujoco.MjModel.from_xml_string(scene_xml(robot, GripperParams(), [], CameraConfig(), WORKSPACES[robot.name]))


def test_published_zero_pose():
    # UR's zero pose: flange at (a2 + a3, -(d4 + d6), d1 - d5), pointing along -y.
    t = flange_pose(UR5, np.zeros(6))
    np.testing.assert_allclose(t[:3, 3], [-0.81725, -0.19145, -0.005491], atol=1e-6)
    np.testing.assert_allclose(t[:3, 2], [0.0, -1.0, 0.0], atol=1e-9)
    t3 = flange_pose(UR3, np.zeros(6))
    np.testing.assert_allclose(t3[:3, 3], [-0.4569, -0.19425, 0.06655], atol=1e-6)


@pytest.mark.parametrize("robot", [UR5, UR3], ids=["ur5", "ur3"])
def test_mujoco_bodies_follow_dh_frames(robot):
    model = arm_model(robot)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-math.pi, math.pi, 6)
        data.qpos[[model.joint(j).qposadr[0] for j in JOINT_NAMES]] = q
        mujoco.mj_kinematics(model, data)
        frames = forward_kinematics(robot, q)
        for k in range(5):  # body k+1 sits at DH frame k+1 (before its own joint turns it)
            body = model.body(LINK_NAMES[k + 1]).id
            np.testing.assert_allclose(data.xpos[body], frames[k][:3, 3], atol=1e-9)
        tool = model.body("tool0").id
        np.testing.assert_allclose(data.xpos[tool], frames[5][:3, 3], atol=1e-9)
        np.testing.assert_allclose(data.xmat[tool].reshape(3, 3), frames[5][:3, :3], atol=1e-9)


def test_forward_kinematics_rejects_bad_input():
    with pytest.raises(ValueError):
        forward_kinematics(UR5, [0.0] * 5)
    with pytest.raises(ValueError):
        forward_kinematics(UR5, [0.0, np.nan, 0, 0, 0, 0])
    with pytest.raises(ValueError):
        robot_params("ur10")


@pytest.mark.parametrize("name", ["ur5", "ur3"])
def test_ik_reaches_corners_and_centre_within_2mm(name):
    robot, ws = robot_params(name), WORKSPACES[name]
    model = arm_model(robot)
    ik = DlsIk(model, TCP_SITE, list(JOINT_NAMES))
    corners = [(ws.x_min, ws.y_min), (ws.x_min, ws.y_max), (ws.x_max, ws.y_min), (ws.x_max, ws.y_max),
               ((ws.x_min + ws.x_max) / 2, (ws.y_min + ws.y_max) / 2)]
    for x, y in corners:
        for z in (0.024, 0.174):          # grasp height and the approach/lift height above it
            for angle in (0.0, math.pi / 3, -math.pi / 2 + 0.01):
                rot = rotation_matrix_z(angle) @ TOOL_DOWN
                seed = IK_SEED.copy()
                seed[5] -= angle
                result = ik.solve([x, y, z], rot, seed)
                assert result.converged, (name, x, y, z, angle, result)
                pos, mat = ik.site_pose(result.q)  # independent FK check of the answer
                assert np.linalg.norm(pos - [x, y, z]) < 0.002
                closing = mat[:, 0]
                assert abs(closing[0] * math.cos(angle) + closing[1] * math.sin(angle)) > 0.999
                assert mat[2, 2] < -0.999  # tool z points down
                frames = forward_kinematics(robot, result.q)
                assert frames[1][2, 3] > frames[0][2, 3]  # elbow above the shoulder: the elbow-up branch


def test_ik_reports_unreachable_targets():
    model = arm_model(UR3)
    ik = DlsIk(model, TCP_SITE, list(JOINT_NAMES))
    result = ik.solve([-0.9, 0.0, 0.05], TOOL_DOWN, IK_SEED)
    assert not result.converged and result.position_error > 0.2
    with pytest.raises(ValueError):
        ik.solve([np.nan, 0.0, 0.1], TOOL_DOWN, IK_SEED)
