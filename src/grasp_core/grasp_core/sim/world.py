"""GraspWorld: the simulated grasp-learning scene (VPG's, with an arm that really moves) behind a small API.

A capsule UR5 (or UR3) with an RG2-like jaw stands at the world origin on a table; a fixed RGB-D camera looks
down at the workspace; N random objects are dropped into it. `execute_grasp(x, y, angle)` runs VPG's top-down
grasp primitive with the arm under joint position control: IK from a fixed elbow-up seed, move above the target,
descend, close (force-limited), lift, and report. Grasped objects leave the scene; the world resets itself when
the workspace is empty or nothing changed for `max_actions_without_change` grasps. The arm parks out of the
camera's view between grasps, so `render()` always shows the scene unoccluded.

Typical use:
    world = GraspWorld(SimConfig(num_objects=10, seed=1))
    color_hm, depth_hm = world.heightmap()
    result = world.execute_grasp(x, y, angle)        # z from the depth heightmap
    world.close()
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import mujoco
import numpy as np

from grasp_core.grasp_failure import GraspFailure
from grasp_core.grasp_pose import fold_jaw_yaw, rotation_matrix_z
from grasp_core.heightmap import depth_image_from_16uc1, make_heightmap
from grasp_core.sim.camera import CameraConfig, CameraFrame, RgbdCamera
from grasp_core.sim.footprint import footprint_keypoint
from grasp_core.sim.grasp_result import (EXPLODING_JAW_OPENING, EXPLODING_SPEED, GraspPhysics, GraspResult)
from grasp_core.sim.gripper import FINGER_JOINTS, GRIPPER_ACTUATOR, TCP_SITE, GripperParams
from grasp_core.sim.ik import DlsIk
from grasp_core.sim.model_builder import TABLE_GEOM, PhysicsParams, scene_xml
from grasp_core.sim.objects import (ObjectSpec, check_object_library, check_object_set, make_object, quat_to_matrix,
                                    sample_drop_poses, sample_objects)
from grasp_core.sim.ur_kinematics import JOINT_NAMES, robot_params
from grasp_core.workspace import VPG_SIM_WORKSPACE, WorkspaceLimits

LOG = logging.getLogger(__name__)

# A UR3 cannot reach VPG's 0.448 m workspace (0.5 m reach): its twin uses a 0.224 m square at 1 mm/pixel,
# which keeps the 224 x 224 heightmap.
UR3_SIM_WORKSPACE = WorkspaceLimits(-0.424, -0.2, -0.112, 0.112, -0.0001, 0.3, 0.001)
DEFAULT_WORKSPACES = {"ur5": VPG_SIM_WORKSPACE, "ur3": UR3_SIM_WORKSPACE}
MAX_OBJECTS = 30
MAX_DROPS = 5  # a drop that leaves objects outside the workspace is redrawn up to this many times
# Elbow-up, wrist-behind-the-tool seed for every IK solve (tool pointing down, in front of the base at -x).
IK_SEED = np.array([0.0, -1.3, 1.8, -2.07, -math.pi / 2, 1.35])
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])  # Rx(pi): tool z down, tool x along world x


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated world. Lengths in metres, angles in radians, times in seconds."""

    robot: str = "ur5"                          # 'ur5' (the seed's sim) or 'ur3' (twin of the real robot)
    num_objects: int = 10                       # objects dropped per scene (the seed uses 2, 4, 6, 10)
    object_library: str = "random_objects"      # 'random_objects' (1000 irregular meshes) or 'blocks' (the seed's)
    object_set: str = "train"                   # the library's 'train' objects or its held-out 'novel' ones
    seed: int = 0
    workspace: WorkspaceLimits | None = None    # None: VPG_SIM_WORKSPACE (ur5) / UR3_SIM_WORKSPACE (ur3)
    camera: CameraConfig = field(default_factory=CameraConfig)
    gripper: GripperParams = field(default_factory=GripperParams)
    physics: PhysicsParams = field(default_factory=PhysicsParams)
    grasp_depth: float = 0.03                   # jaw centre this far below the surface height at (x, y)
    approach_height: float = 0.15               # move above the target / lift by this much (VPG: 0.15)
    table_clearance: float = 0.004              # finger tips stay this far above the table
    max_joint_speed: float = 3.0                # rad/s, peak of the smooth joint moves
    drop_area: float = 0.55                     # objects drop into this central fraction of the workspace (VPG:
                                                # 0.248 m of 0.448 m)
    max_actions_without_change: int = 10
    settle_time: float = 6.0                    # s: a dropped scene settles until still or this cap (logged)
    auto_reset: bool = True                     # reset by itself when empty or stuck

    def resolved_workspace(self) -> WorkspaceLimits:
        return self.workspace if self.workspace is not None else DEFAULT_WORKSPACES[self.robot]


def world_config(object_library: str = "random_objects", exact_depth: bool = False, **fields) -> SimConfig:
    """The SimConfig of a named world: its object library, and the camera's D435-like depth noise unless
    `exact_depth`; `fields` set the rest. The one place the harness, the demo and the sim node name a world."""
    camera = fields.pop("camera", CameraConfig())
    return SimConfig(object_library=object_library, camera=camera.exact_depth() if exact_depth else camera, **fields)


def _log_mujoco_warning(message: str) -> None:
    LOG.warning("MuJoCo: %s", message.strip())


def check_num_objects(num_objects) -> int:
    if isinstance(num_objects, bool) or not isinstance(num_objects, (int, np.integer)) \
            or not 1 <= num_objects <= MAX_OBJECTS:
        raise ValueError(f"number of objects must be an integer in [1, {MAX_OBJECTS}], got {num_objects!r}")
    return int(num_objects)


def _check_config(config: SimConfig) -> None:
    robot_params(config.robot)
    check_num_objects(config.num_objects)
    check_object_library(config.object_library)
    check_object_set(config.object_set)
    if not isinstance(config.seed, (int, np.integer)) or isinstance(config.seed, bool):
        raise ValueError(f"seed must be an integer, got {config.seed!r}")
    if not 0 < config.drop_area <= 1:
        raise ValueError(f"SimConfig.drop_area must be a fraction in (0, 1], got {config.drop_area!r}")
    for name in ("grasp_depth", "approach_height", "table_clearance", "max_joint_speed", "settle_time"):
        value = getattr(config, name)
        positive = name in ("approach_height", "max_joint_speed", "settle_time")
        if not np.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError(f"SimConfig.{name} must be a finite positive number, got {value!r}")
    if config.max_actions_without_change < 1:
        raise ValueError("SimConfig.max_actions_without_change must be >= 1")


class _ExplodingContact(Exception):
    """A contact exploded during a grasp being simulated at a time step that has a finer one left."""


@dataclass(frozen=True)
class Settling:
    """How the last settle ended: simulated seconds, the fastest object speed left, and whether all were still."""

    seconds: float
    max_speed: float
    still: bool


@dataclass(frozen=True)
class ObjectState:
    """An object's ground truth: name, shape type, pose (position (3,), rotation (3, 3)) and body-frame points
    (all of them, and per convex part)."""

    name: str
    shape: str
    position: np.ndarray
    rotation: np.ndarray
    points: np.ndarray
    parts: tuple[np.ndarray, ...] = ()

    def world_points(self) -> np.ndarray:
        return self.points @ self.rotation.T + self.position

    def world_parts(self) -> list[np.ndarray]:
        return [p @ self.rotation.T + self.position for p in (self.parts or (self.points,))]


class GraspWorld:
    """The simulated world. Not thread-safe; one instance owns one MuJoCo model, data and GL context.

    Every reset builds a new MuJoCo model (object sizes differ per scene), so read `world.model` / `world.data`
    afresh rather than keeping references. Public state: `config`, `workspace`, `objects` (this scene's
    ObjectSpecs), `actions_without_change`, `num_resets`.
    """

    def __init__(self, config: SimConfig = SimConfig()):
        _check_config(config)
        if mujoco.get_mju_user_warning() is None:  # to logging, not MUJOCO_LOG.TXT in the working directory
            mujoco.set_mju_user_warning(_log_mujoco_warning)
        self.config = config
        self.robot = robot_params(config.robot)
        self.workspace = config.resolved_workspace()
        self._rng = np.random.default_rng(config.seed)
        self._camera: RgbdCamera | None = None
        self._frame: CameraFrame | None = None
        self._heightmaps: tuple[np.ndarray, np.ndarray] | None = None
        self.actions_without_change = 0
        self.num_resets = 0
        self.grasp_physics = GraspPhysics()  # peaks of the last grasp (exploding-contact measure)
        self._abort_on_explosion = False
        self.reset()

    # ------------------------------------------------------------------------------------------------ scene
    def reset(self, num_objects: int | None = None, seed: int | None = None, object_set: str | None = None,
              shapes: list[str] | None = None) -> list[str]:
        """New scene: `num_objects` random objects dropped into the workspace, arm at home. Returns their names.

        Arguments left None keep the config's value (the seed: continue the world's random stream). `shapes`
        names the exact shape of each object instead (e.g. ['box', 'random_007']), for tests and demos.
        """
        object_set = check_object_set(self.config.object_set if object_set is None else object_set)
        if shapes is not None:
            shapes = list(shapes)
            for shape in shapes:  # refuses unknown names before anything changes
                make_object(shape, np.random.default_rng(0), "check")
            num_objects = len(shapes)
        n = check_num_objects(self.config.num_objects if num_objects is None else num_objects)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise ValueError(f"seed must be an integer, got {seed!r}")
            self._rng = np.random.default_rng(int(seed))
        self.config = replace(self.config, num_objects=n, object_set=object_set)
        self.objects: list[ObjectSpec] = sample_objects(self._rng, n, object_set, shapes=shapes,
                                                        library=self.config.object_library)
        self._build(self.objects)
        self._drop_objects()
        self.actions_without_change = 0
        self.num_resets += 1
        return [o.name for o in self.objects]

    def _build(self, objects: list[ObjectSpec]) -> None:
        xml = scene_xml(self.robot, self.config.gripper, objects, self.config.camera, self.workspace,
                        self.config.physics)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._arm_qpos = np.array([m.joint(j).qposadr[0] for j in JOINT_NAMES])
        self._arm_dof = np.array([m.joint(j).dofadr[0] for j in JOINT_NAMES])
        self._arm_act = np.array([m.actuator(f"{j}_servo").id for j in JOINT_NAMES])
        self._finger_qpos = np.array([m.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self._finger_dof = m.joint(FINGER_JOINTS[0]).dofadr[0]
        self._gripper_act = m.actuator(GRIPPER_ACTUATOR).id
        self._table_geom = m.geom(TABLE_GEOM).id
        gripper_bodies = {m.body(b).id for b in ("tool0", "left_finger", "right_finger")}
        self._gripper_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] in gripper_bodies}
        self._pad_bodies = {m.body("left_finger").id, m.body("right_finger").id}
        self._object_body = {o.name: m.body(o.name).id for o in objects}
        self._object_qpos = {o.name: m.joint(f"{o.name}_joint").qposadr[0] for o in objects}
        self._object_dof = {o.name: m.joint(f"{o.name}_joint").dofadr[0] for o in objects}
        self._object_contacts = {g: (int(m.geom_contype[g]), int(m.geom_conaffinity[g])) for o in objects
                                 for g in range(m.body_geomadr[m.body(o.name).id],
                                                m.body_geomadr[m.body(o.name).id] + m.body_geomnum[m.body(o.name).id])}
        self._object_lin_dofs = np.array([self._object_dof[o.name] + k for o in objects for k in range(3)], int)
        self._removed: set[str] = set()
        self._control_substeps = max(1, int(round(0.02 / m.opt.timestep)))
        self._ik = DlsIk(m, TCP_SITE, list(JOINT_NAMES))
        self._home = self._solve_home()
        self.data.qpos[self._arm_qpos] = self._home
        self.data.ctrl[self._arm_act] = self._home
        self.data.qpos[self._finger_qpos] = self.config.gripper.max_opening / 2
        self.data.ctrl[self._gripper_act] = self.config.gripper.max_opening / 2
        mujoco.mj_forward(m, self.data)
        if self._camera is None:
            self._camera = RgbdCamera(m, self.config.camera, seed=self.config.seed)
        else:
            self._camera.set_model(m)
        self._invalidate()

    def _solve_home(self) -> np.ndarray:
        """Parking pose: jaw pointing down between the base and the workspace, above and outside the camera view."""
        ws = self.workspace
        target = np.array([ws.x_max + 0.08, (ws.y_min + ws.y_max) / 2, ws.z_min + 0.25])
        result = self._ik.solve(target, TOOL_DOWN @ np.eye(3), IK_SEED)
        if not result.converged:
            raise RuntimeError(f"no home pose for {self.robot.name} above {target}: {result}")
        return result.q

    def _drop_objects(self) -> None:
        """Drop the objects into the central `drop_area` of the workspace (see sample_drop_poses) and settle. A
        drop that leaves an object outside the workspace (slid or rolled off the pile) is drawn again."""
        ws, d = self.workspace, self.data
        centre = np.array([(ws.x_min + ws.x_max) / 2, (ws.y_min + ws.y_max) / 2])
        half = 0.5 * self.config.drop_area * np.array([ws.x_max - ws.x_min, ws.y_max - ws.y_min])
        lo, hi = centre - half, centre + half
        for attempt in range(1, MAX_DROPS + 1):
            for obj, (pos, quat) in zip(self.objects, sample_drop_poses(self._rng, self.objects, lo, hi, ws.z_min)):
                adr = self._object_qpos[obj.name]
                d.qpos[adr:adr + 3] = pos
                d.qpos[adr + 3:adr + 7] = quat
            d.qvel[:] = 0.0
            mujoco.mj_forward(self.model, d)
            self._settle(max_time=self.config.settle_time)
            outside = [o.name for o in self.objects if o.name not in self.objects_in_workspace()]
            if not outside:
                break
            if attempt < MAX_DROPS:
                LOG.info("drop %d left %s outside the workspace; dropping again", attempt, outside)
                self._removed.clear()
                for name in outside:  # back in play: contacts and gravity as before
                    self._restore(name)
            else:
                LOG.warning("after %d drops %s still came to rest outside the workspace: left out, the scene has "
                            "%d objects", MAX_DROPS, outside, len(self.objects) - len(outside))
                for name in outside:
                    if name not in self._removed:
                        self._remove(name)
        if not self.settling.still:
            LOG.warning("scene not still after the %.1f s settle cap (an object moves at %.3f m/s)",
                        self.config.settle_time, self.settling.max_speed)

    def _settle(self, max_time: float, min_time: float = 0.2, speed_tol: float = 0.01) -> None:
        """Step until every object on the table is (nearly) still: no point of it faster than `speed_tol` (m/s;
        linear speed plus angular speed times the object's bounding radius)."""
        m, d = self.model, self.data
        n_check = max(1, int(round(0.05 / m.opt.timestep)))
        steps = int(max_time / m.opt.timestep)
        names = [o.name for o in self.objects if o.name not in self._removed]
        dofs = np.array([self._object_dof[n] for n in names], dtype=int)[:, None] + np.arange(6)
        radii = np.array([o.bounding_radius for o in self.objects if o.name not in self._removed])
        done, speed = 0, 0.0
        while done < steps:
            mujoco.mj_step(m, d, nstep=n_check)
            done += n_check
            v = d.qvel[dofs].reshape(-1, 6)
            speed = float((np.linalg.norm(v[:, :3], axis=1) + np.linalg.norm(v[:, 3:], axis=1) * radii).max(initial=0))
            if done * m.opt.timestep >= min_time and speed < speed_tol:
                break
        self.settling = Settling(seconds=done * m.opt.timestep, max_speed=speed, still=speed < speed_tol)
        for name in names:  # an object that fell off the table leaves the scene
            adr = self._object_qpos[name]
            if d.qpos[adr + 2] < self.workspace.z_min - 0.1:
                self._remove(name)
        self._invalidate()

    def _invalidate(self) -> None:
        self._frame = None
        self._heightmaps = None

    # ------------------------------------------------------------------------------------------------ sensing
    def render(self) -> CameraFrame:
        """The camera's RGB-D frame of the current scene (the arm is parked out of view)."""
        if self._camera is None:
            raise RuntimeError("the world is closed; create a new GraspWorld")
        if self._frame is None:
            self._frame = self._camera.render(self.data)
        return self._frame

    def heightmap(self) -> tuple[np.ndarray, np.ndarray]:
        """(colour uint8 (H, W, 3), depth float32 (H, W) metres above z_min) from the rendered frame."""
        if self._heightmaps is None:
            frame = self.render()
            self._heightmaps = make_heightmap(frame.color, depth_image_from_16uc1(frame.depth_mm),
                                              frame.intrinsics.K, frame.pose, self.workspace)
        return self._heightmaps

    def joint_names(self) -> list[str]:
        """Names for /joint_states: the six UR joints, then the two finger slides."""
        return list(JOINT_NAMES) + list(FINGER_JOINTS)

    def joint_positions(self) -> np.ndarray:
        """Positions matching joint_names(): radians for the arm, metres (per finger) for the jaw."""
        return np.r_[self.data.qpos[self._arm_qpos], self.data.qpos[self._finger_qpos]].copy()

    def jaw_opening(self) -> float:
        """Distance between the finger pads, metres."""
        return float(2.0 * self.data.qpos[self._finger_qpos[0]])

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Jaw centre (position (3,), rotation (3, 3)) in the world frame."""
        sid = self.model.site(TCP_SITE).id
        return self.data.site_xpos[sid].copy(), self.data.site_xmat[sid].reshape(3, 3).copy()

    def object_states(self, only_in_workspace: bool = True) -> list[ObjectState]:
        """Ground-truth poses of the objects still in the scene (by default only those inside the workspace)."""
        states = []
        for obj in self.objects:
            if obj.name in self._removed:
                continue
            adr = self._object_qpos[obj.name]
            pos = self.data.qpos[adr:adr + 3].copy()
            if only_in_workspace and not self._in_workspace(pos):
                continue
            states.append(ObjectState(obj.name, obj.shape, pos, quat_to_matrix(self.data.qpos[adr + 3:adr + 7]),
                                      obj.points, obj.parts))
        return states

    def _in_workspace(self, pos: np.ndarray) -> bool:
        return self.workspace.contains(pos[0], pos[1]) and pos[2] > self.workspace.z_min - 0.02

    def objects_in_workspace(self) -> list[str]:
        """Names of the objects whose centre is inside the workspace (on the table)."""
        return [s.name for s in self.object_states(only_in_workspace=True)]

    def ground_truth_keypoints(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per object in the workspace: its key point (grasp_core.sim.footprint: the footprint pixel [u, v]
        deepest inside it) and a sigma (pixels) covering it. Returns (points (N, 2) float, sigmas (N,) float, names)."""
        points, sigmas, names = [], [], []
        for state in self.object_states(only_in_workspace=True):
            (u, v), sigma = footprint_keypoint(state.world_parts(), self.workspace)
            h, w = self.workspace.shape
            points.append((min(max(u, 0.0), w - 1e-3), min(max(v, 0.0), h - 1e-3)))
            sigmas.append(sigma)
            names.append(state.name)
        return np.array(points, dtype=np.float64).reshape(-1, 2), np.array(sigmas, dtype=np.float64), names

    # ------------------------------------------------------------------------------------------------ motion
    def _step_control(self, q_from: np.ndarray, q_to: np.ndarray, duration: float, monitor=None) -> bool:
        """Smooth joint-space move by position control; returns True if `monitor()` stopped it early."""
        m, d = self.model, self.data
        dt = self._control_substeps * m.opt.timestep
        ticks = max(1, int(math.ceil(duration / dt)))
        for k in range(1, ticks + 1):
            s = k / ticks
            s = s * s * (3.0 - 2.0 * s)  # smoothstep: zero velocity at both ends
            d.ctrl[self._arm_act] = q_from + s * (q_to - q_from)
            self._step(self._control_substeps)
            if monitor is not None and monitor():
                d.ctrl[self._arm_act] = d.qpos[self._arm_qpos]
                return True
        return False

    def _step(self, nstep: int) -> None:
        """Advance the physics during a grasp, keeping the peaks an exploding contact would show."""
        m, d = self.model, self.data
        mujoco.mj_step(m, d, nstep=nstep)
        peaks = self.grasp_physics
        speed = np.linalg.norm(d.qvel[self._object_lin_dofs].reshape(-1, 3), axis=1)
        peaks.max_object_speed = max(peaks.max_object_speed, float(np.nan_to_num(speed, nan=np.inf).max(initial=0)))
        peaks.max_jaw_opening = max(peaks.max_jaw_opening, self.jaw_opening())
        peaks.nan = peaks.nan or not np.all(np.isfinite(d.qpos))
        if self._abort_on_explosion and (peaks.nan or peaks.max_object_speed > EXPLODING_SPEED
                                         or peaks.max_jaw_opening > EXPLODING_JAW_OPENING):
            raise _ExplodingContact

    def _move_to(self, q_target: np.ndarray, speed_scale: float = 1.0, monitor=None,
                 settle_tol: float = 0.003, max_settle: float = 0.3) -> bool:
        q_from = self.data.ctrl[self._arm_act].copy()
        distance = float(np.max(np.abs(q_target - q_from)))
        duration = max(0.1, 1.5 * distance / (self.config.max_joint_speed * speed_scale))
        stopped = self._step_control(q_from, q_target, duration, monitor)
        if stopped:
            return True
        m, d = self.model, self.data
        for _ in range(int(max_settle / (self._control_substeps * m.opt.timestep))):
            if np.max(np.abs(d.qpos[self._arm_qpos] - q_target)) < settle_tol:
                break
            self._step(self._control_substeps)
        return False

    def _set_gripper(self, opening: float, duration: float) -> None:
        """Command the jaw and wait until the fingers stop (contact or target) or `duration` passes."""
        m, d = self.model, self.data
        d.ctrl[self._gripper_act] = opening / 2
        ticks = max(1, int(duration / (self._control_substeps * m.opt.timestep)))
        for k in range(ticks):
            self._step(self._control_substeps)
            if k >= 3 and abs(d.qvel[self._finger_dof]) < 1e-3:
                break

    def _contact_force(self, geoms_a: set[int], geom_b: int | None = None) -> float:
        """Total normal force of contacts between `geoms_a` and `geom_b` (any geom when None)."""
        m, d = self.model, self.data
        total, wrench = 0.0, np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = c.geom1, c.geom2
            if (g1 in geoms_a and (geom_b is None or g2 == geom_b)) or \
                    (g2 in geoms_a and (geom_b is None or g1 == geom_b)):
                mujoco.mj_contactForce(m, d, i, wrench)
                total += abs(wrench[0])
        return total

    def _solve(self, position: np.ndarray, angle: float):
        return self._ik.solve(position, rotation_matrix_z(angle) @ TOOL_DOWN, self._seed_for(angle))

    @staticmethod
    def _seed_for(angle: float) -> np.ndarray:
        seed = IK_SEED.copy()
        seed[5] -= angle  # start the wrist near the wanted yaw so DLS never has to turn it by ~pi
        return seed

    # ------------------------------------------------------------------------------------------------ grasp
    def execute_grasp(self, x: float, y: float, angle: float, z: float | None = None) -> GraspResult:
        """VPG's grasp primitive at (x, y) with the jaws closing along (cos angle, sin angle).

        z: surface height at (x, y) in the world frame (None: read it from the depth heightmap); the jaw
        centre goes `grasp_depth` below it, but never lets the finger tips reach the table.
        """
        ws, cfg = self.workspace, self.config
        try:
            x, y, angle = float(x), float(y), float(angle)
            z = None if z is None else float(z)
        except (TypeError, ValueError):
            return self._refused(f"grasp target must be numbers, got x={x!r} y={y!r} angle={angle!r} z={z!r}")
        values = (x, y, angle) + (() if z is None else (z,))
        if not all(math.isfinite(v) for v in values):
            return self._refused(f"grasp target is not finite: x={x} y={y} angle={angle} z={z}")
        if not ws.contains(x, y):
            return self._refused(f"grasp target ({x:.4f}, {y:.4f}) is outside the workspace "
                                 f"x [{ws.x_min}, {ws.x_max}], y [{ws.y_min}, {ws.y_max}]")
        if z is not None and not ws.z_min - 0.05 <= z <= ws.z_max:
            return self._refused(f"grasp height z={z:.4f} is outside [{ws.z_min - 0.05}, {ws.z_max}]")
        if z is None:
            _, depth_hm = self.heightmap()
            u, v = ws.point_to_pixel(x, y)
            z = ws.z_min + float(depth_hm[v, u])
        yaw = fold_jaw_yaw(angle)  # the jaw is symmetric: keep the wrist turn small
        min_tcp = ws.z_min + cfg.gripper.tip_below_tcp + cfg.table_clearance
        grasp_pos = np.array([x, y, min(max(z - cfg.grasp_depth, min_tcp), ws.z_max)])
        above_pos = grasp_pos + [0.0, 0.0, cfg.approach_height]

        before = {s.name: s.position for s in self.object_states(only_in_workspace=False)}
        unstable_before = self._instabilities()
        outcome = self._refined_grasp_motion(grasp_pos, above_pos, yaw)
        reason, grasped, opening, message = outcome
        after = {s.name: s.position for s in self.object_states(only_in_workspace=False)}
        self.grasp_physics.max_displacement = max(
            (float(np.linalg.norm(after[n] - before[n])) for n in after if n in before), default=0.0)
        changed = set(before) != set(after) or any(np.linalg.norm(after[n] - before[n]) > 0.01 for n in after)
        self.actions_without_change = 0 if changed else self.actions_without_change + 1

        scene_reset = False
        remaining = len(self.objects_in_workspace())
        if self._instabilities() > unstable_before:
            # MuJoCo reset its state after a numerical blow-up: the scene is no longer meaningful.
            self.reset()
            scene_reset, remaining = True, len(self.objects_in_workspace())
            message += "; the physics became unstable, scene reset"
        elif cfg.auto_reset and (remaining == 0 or self.actions_without_change >= cfg.max_actions_without_change):
            why = "workspace empty" if remaining == 0 else f"{self.actions_without_change} grasps without change"
            self.reset()
            scene_reset, remaining = True, len(self.objects_in_workspace())
            message += f"; scene reset ({why})"
        return GraspResult(executed=True, grasp_success=reason == GraspFailure.NONE, failure_reason=reason,
                           grasped_object=grasped, jaw_opening=opening, objects_remaining=remaining,
                           message=message, position=tuple(float(v) for v in grasp_pos), angle=yaw,
                           scene_reset=scene_reset)

    def _instabilities(self) -> int:
        """How often MuJoCo found NaN/huge values and reset its state (it does so by itself)."""
        w = mujoco.mjtWarning
        return sum(int(self.data.warning[k].number) for k in (w.mjWARN_BADQACC, w.mjWARN_BADQVEL, w.mjWARN_BADQPOS))

    def _refused(self, message: str) -> GraspResult:
        return GraspResult(executed=False, grasp_success=False, failure_reason=GraspFailure.INVALID_TARGET,
                           grasped_object="", jaw_opening=self.jaw_opening(),
                           objects_remaining=len(self.objects_in_workspace()), message=message)

    def _refined_grasp_motion(self, grasp_pos, above_pos, yaw) -> tuple[GraspFailure, str, float, str]:
        """_grasp_motion, simulated again from the same state with a finer time step when a contact explodes."""
        m, d = self.model, self.data
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state, spec)
        removed, contacts, gravcomp = set(self._removed), (m.geom_contype.copy(), m.geom_conaffinity.copy()), \
            m.body_gravcomp.copy()
        timestep, divisors = m.opt.timestep, self.config.physics.refine_steps
        try:
            for k, divisor in enumerate(divisors):
                m.opt.timestep = timestep / divisor
                self._control_substeps = max(1, int(round(0.02 / m.opt.timestep)))
                self._abort_on_explosion = k < len(divisors) - 1
                self.grasp_physics = GraspPhysics(refinements=k)
                try:
                    return self._grasp_motion(grasp_pos, above_pos, yaw)
                except _ExplodingContact:
                    LOG.debug("exploding contact at time step %.2g s: simulating the grasp again at %.2g s",
                              m.opt.timestep, timestep / divisors[k + 1])
                    mujoco.mj_setState(m, d, state, spec)
                    self._removed = set(removed)
                    m.geom_contype[:], m.geom_conaffinity[:] = contacts
                    m.body_gravcomp[:] = gravcomp
                    mujoco.mj_forward(m, d)
        finally:
            m.opt.timestep = timestep
            self._control_substeps = max(1, int(round(0.02 / timestep)))
            self._abort_on_explosion = False
        raise AssertionError("unreachable: the last refinement runs to the end")

    def _grasp_motion(self, grasp_pos, above_pos, yaw) -> tuple[GraspFailure, str, float, str]:
        cfg = self.config
        ik_grasp, ik_above = self._solve(grasp_pos, yaw), self._solve(above_pos, yaw)
        for target, ik in ((grasp_pos, ik_grasp), (above_pos, ik_above)):
            if not ik.converged:
                reason = GraspFailure.UNREACHABLE if ik.position_error > 0.01 else GraspFailure.IK_FAILURE
                return (reason, "", self.jaw_opening(),
                        f"no IK solution for the jaw at {np.round(target, 4).tolist()}: best is "
                        f"{ik.position_error * 1000:.1f} mm / {math.degrees(ik.orientation_error):.1f} deg off")
        self._invalidate()
        try:
            return self._run_grasp(ik_grasp.q, ik_above.q)
        finally:
            # Whatever happened, open the jaw (it opens on the way) and park the arm out of the camera's view.
            self.data.ctrl[self._gripper_act] = cfg.gripper.max_opening / 2
            self._move_to(self._home)
            self._settle(max_time=0.5, min_time=0.0)
            self._release_stuck_objects()

    def _release_stuck_objects(self) -> None:
        """An object still touching the gripper at the parking pose is wedged in it (not held between the pads,
        so not a success): it would ride along on every later grasp and make each one close on it. It leaves the
        scene, as if taken off the gripper by hand."""
        m, d = self.model, self.data
        stuck = set()
        for i in range(d.ncon):
            g1, g2 = d.contact[i].geom1, d.contact[i].geom2
            for mine, other in ((g1, g2), (g2, g1)):
                if mine in self._gripper_geoms and other not in self._gripper_geoms:
                    stuck.update(n for n, body in self._object_body.items() if body == m.geom_bodyid[other])
        for name in sorted(stuck - self._removed):
            LOG.warning("%s is stuck to the gripper after the grasp: it leaves the scene", name)
            self._remove(name)
        self.grasp_physics.stuck_to_gripper = len(stuck)

    def _run_grasp(self, q_grasp: np.ndarray, q_above: np.ndarray) -> tuple[GraspFailure, str, float, str]:
        cfg = self.config
        if self.jaw_opening() < cfg.gripper.max_opening - 0.002:
            self._set_gripper(cfg.gripper.max_opening, duration=0.2)
        self._move_to(q_above)
        table_hits = []

        def blocked() -> bool:  # protective stop: the jaw pushes on something or touches the table
            if self._contact_force(self._gripper_geoms, self._table_geom) > 1.0:
                table_hits.append(True)
                return True
            return self._contact_force(self._gripper_geoms) > 40.0

        # Everything stays awake while the jaw touches objects: a held object must not doze off in the jaw.
        sleep_flag = self.model.opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_SLEEP)
        self.model.opt.enableflags &= ~int(mujoco.mjtEnableBit.mjENBL_SLEEP)
        try:
            self._move_to(q_grasp, speed_scale=0.5, monitor=blocked)
            if table_hits:
                self._move_to(q_above)
                return (GraspFailure.TABLE_COLLISION, "", self.jaw_opening(),
                        "the gripper hit the table on the way down")
            self._set_gripper(0.0, duration=0.6)
            closed_on_something = self.jaw_opening() > cfg.gripper.closed_threshold
            z_before = {s.name: s.position[2] for s in self.object_states(only_in_workspace=False)}
            self._move_to(q_above, speed_scale=0.6)
            self._step(int(0.1 / self.model.opt.timestep))
        finally:
            self.model.opt.enableflags |= sleep_flag
        opening = self.jaw_opening()
        lifted = [s.name for s in self.object_states(only_in_workspace=False)
                  if s.position[2] - z_before[s.name] > 0.5 * cfg.approach_height]
        # Held means between the fingers at the end of the lift: touching both pads. An object that is up in the
        # air without that (thrown by the closing jaw, or riding on the held one) is not a grasp.
        held = [name for name in lifted if self._object_body[name] in self._between_pads()]
        self.grasp_physics.lifted_not_held = len(set(lifted) - set(held))
        if opening > cfg.gripper.closed_threshold and held:
            for name in held:
                self._remove(name)
            return GraspFailure.NONE, held[0], opening, f"grasped {held[0]}"
        if closed_on_something:
            return GraspFailure.DROPPED, "", opening, "the jaw closed on something but did not hold it through the lift"
        return GraspFailure.NOTHING_GRASPED, "", opening, "the jaw closed on nothing"

    def _between_pads(self) -> set[int]:
        """Bodies in contact with both finger pads now."""
        m, d = self.model, self.data
        touched: dict[int, set[int]] = {}
        for i in range(d.ncon):
            b1, b2 = m.geom_bodyid[d.contact[i].geom1], m.geom_bodyid[d.contact[i].geom2]
            if b1 in self._pad_bodies:
                touched.setdefault(b2, set()).add(b1)
            elif b2 in self._pad_bodies:
                touched.setdefault(b1, set()).add(b2)
        return {body for body, pads in touched.items() if pads == self._pad_bodies}

    def _remove(self, name: str) -> None:
        """The grasped object leaves the scene: parked far away, without contacts or gravity."""
        m, d = self.model, self.data
        body = self._object_body[name]
        for g in range(m.body_geomadr[body], m.body_geomadr[body] + m.body_geomnum[body]):
            m.geom_contype[g] = m.geom_conaffinity[g] = 0
        m.body_gravcomp[body] = 1.0
        adr, dof = self._object_qpos[name], self._object_dof[name]
        d.qpos[adr:adr + 3] = (3.0 + 0.2 * len(self._removed), 3.0, -0.5)
        d.qvel[dof:dof + 6] = 0.0
        self._removed.add(name)
        mujoco.mj_forward(m, d)

    def _restore(self, name: str) -> None:
        """Undo _remove: the object collides and falls again (the caller places it)."""
        m = self.model
        body = self._object_body[name]
        for g in range(m.body_geomadr[body], m.body_geomadr[body] + m.body_geomnum[body]):
            m.geom_contype[g], m.geom_conaffinity[g] = self._object_contacts[g]
        m.body_gravcomp[body] = 0.0
        self._removed.discard(name)

    # ------------------------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Free the renderer's GL context. The world cannot render afterwards."""
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    def __enter__(self) -> "GraspWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
