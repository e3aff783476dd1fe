"""The simulated grasping world (MuJoCo), ROS-free: see world.GraspWorld for the API.

Modules: ur_kinematics (UR5/UR3 DH parameters, FK), gripper (RG2-like jaw), objects (shapes), model_builder
(MJCF), camera (RealSense-like RGB-D frames), ik (damped least squares), grasp_result (ExecuteGrasp mirror; the
failure reasons are grasp_core.grasp_failure), world (GraspWorld, SimConfig), footprint (an object's key point),
keypoints (datasets of free ground-truth annotation). Imports run one way: keypoints -> world -> footprint.
Set MUJOCO_GL (egl or osmesa) before importing this package if the default (egl) does not suit.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must happen before mujoco is imported

# ruff: noqa: E402
from grasp_core.grasp_failure import GraspFailure
from grasp_core.sim.camera import CameraConfig, CameraFrame, CameraIntrinsics
from grasp_core.sim.grasp_result import GraspResult
from grasp_core.sim.footprint import footprint_keypoint
from grasp_core.sim.keypoints import make_keypoint_dataset
from grasp_core.sim.objects import NOVEL_SHAPES, OBJECT_LIBRARIES, TRAIN_SHAPES
from grasp_core.sim.world import UR3_SIM_WORKSPACE, GraspWorld, ObjectState, SimConfig, world_config

__all__ = ["CameraConfig", "CameraFrame", "CameraIntrinsics", "GraspFailure", "GraspResult", "GraspWorld",
           "NOVEL_SHAPES", "OBJECT_LIBRARIES", "ObjectState", "SimConfig", "TRAIN_SHAPES", "UR3_SIM_WORKSPACE",
           "footprint_keypoint", "make_keypoint_dataset", "world_config"]
