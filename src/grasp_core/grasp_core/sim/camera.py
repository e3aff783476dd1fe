"""A fixed RGB-D camera in the form realsense2_camera publishes (aligned depth), rendered with MuJoCo.

Output: rgb8 colour uint8 (H, W, 3), 16UC1 depth uint16 millimetres (0 = no return), CameraInfo-like intrinsics
(K, D = zeros, plumb_bob) and the camera pose as a 4x4 transform camera-optical -> world in the OpenCV/ROS optical
convention (x right, y down, z forward). MuJoCo cameras look along their -z with y up; `optical_from_mujoco`
converts. Pixel centres are at integer coordinates (OpenCV), so a centred principal point is ((W-1)/2, (H-1)/2).
The depth is a D435's by default (noise, holes, 1 mm steps: grasp_core.sim.depth_noise);
`CameraConfig(depth_noise=None)` renders exact depth.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import mujoco
import numpy as np

from grasp_core.sim.depth_noise import DepthNoiseConfig, correlated_field, noisy_depth_mm
from grasp_core.workspace import WorkspaceLimits

CAMERA_NAME = "rgbd"
# Geom groups (MJCF `group`): the renderer can hide the robot to prove it is out of view.
OBJECT_GROUP, ARM_GROUP, GRIPPER_GROUP = 0, 1, 2
# Optical frame (x right, y down, z forward) <-> MuJoCo camera frame (x right, y up, looking along -z).
OPTICAL_FROM_MUJOCO = np.diag([1.0, -1.0, -1.0])
# Streams of the depth-noise generators (SeedSequence entropy [seed, stream, ...]): the fixed correlated pattern and
# the per-frame draws never share random numbers.
_PATTERN_STREAM, _FRAME_STREAM = 1, 2


@dataclass(frozen=True)
class CameraConfig:
    """Intrinsics (pixels) and placement (world frame, metres) of the fixed camera.

    Defaults: a RealSense D435 colour stream (640x480, fx ~ fy ~ 615). `position`/`target` None: the camera
    looks straight down at the workspace centre from the lowest height at which the whole workspace (and
    objects `margin` tall on it) is in view; `up` is the world direction shown as image-up. `depth_noise`: the
    D435-like depth error model (grasp_core.sim.depth_noise); None renders exact depth (rounded to 1 mm).
    """

    width: int = 640
    height: int = 480
    fx: float = 615.0
    fy: float = 615.0
    cx: float | None = None
    cy: float | None = None
    position: tuple[float, float, float] | None = None
    target: tuple[float, float, float] | None = None
    up: tuple[float, float, float] = (1.0, 0.0, 0.0)
    margin: float = 0.06
    znear: float = 0.05
    zfar: float = 4.0
    depth_noise: DepthNoiseConfig | None = DepthNoiseConfig()

    def __post_init__(self) -> None:
        values = [self.fx, self.fy, self.znear, self.zfar] + [v for v in (self.cx, self.cy) if v is not None]
        if self.width <= 0 or self.height <= 0 or not np.all(np.isfinite(values)) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"camera needs a positive image size and focal lengths, got {self}")
        if not 0 < self.znear < self.zfar:
            raise ValueError(f"camera clipping planes need 0 < znear < zfar, got {self.znear}, {self.zfar}")
        if self.depth_noise is not None and not isinstance(self.depth_noise, DepthNoiseConfig):
            raise ValueError(f"CameraConfig.depth_noise must be a DepthNoiseConfig or None (exact depth), "
                             f"got {self.depth_noise!r}")

    def exact_depth(self) -> "CameraConfig":
        """This camera without depth noise (exact depth in 1 mm steps)."""
        return replace(self, depth_noise=None)

    @property
    def principal_point(self) -> tuple[float, float]:
        return (self.cx if self.cx is not None else (self.width - 1) / 2,
                self.cy if self.cy is not None else (self.height - 1) / 2)

    def intrinsics(self) -> "CameraIntrinsics":
        cx, cy = self.principal_point
        k = np.array([[self.fx, 0.0, cx], [0.0, self.fy, cy], [0.0, 0.0, 1.0]])
        return CameraIntrinsics(width=self.width, height=self.height, K=k)

    def placement(self, workspace: WorkspaceLimits) -> tuple[np.ndarray, np.ndarray]:
        """(position, target) in the world frame; the default looks down at the workspace centre."""
        centre = np.array([(workspace.x_min + workspace.x_max) / 2, (workspace.y_min + workspace.y_max) / 2,
                           workspace.z_min])
        target = centre if self.target is None else np.asarray(self.target, dtype=np.float64)
        if self.position is not None:
            return np.asarray(self.position, dtype=np.float64), target
        # Image rows run along `up`, columns across it; keep each half-extent inside the half field of view.
        up = np.asarray(self.up, dtype=np.float64)
        along_x = abs(up[0]) >= abs(up[1])
        half_rows = (workspace.x_max - workspace.x_min if along_x else workspace.y_max - workspace.y_min) / 2
        half_cols = (workspace.y_max - workspace.y_min if along_x else workspace.x_max - workspace.x_min) / 2
        cx, cy = self.principal_point
        tan_rows = min(cy, self.height - 1 - cy) / self.fy
        tan_cols = min(cx, self.width - 1 - cx) / self.fx
        height = 1.05 * max(half_rows / tan_rows, half_cols / tan_cols) + self.margin
        return centre + [0.0, 0.0, height], target


@dataclass(frozen=True)
class CameraIntrinsics:
    """What sensor_msgs/CameraInfo carries for an undistorted pinhole camera."""

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))
    distortion_model: str = "plumb_bob"

    @property
    def P(self) -> np.ndarray:
        """3x4 projection matrix [K | 0] (monocular)."""
        return np.hstack([self.K, np.zeros((3, 1))])

    def as_camera_info(self) -> dict:
        """Flat lists, ready for a sensor_msgs/CameraInfo (k, d, r, p are row-major)."""
        return {"width": self.width, "height": self.height, "distortion_model": self.distortion_model,
                "d": self.D.tolist(), "k": self.K.reshape(-1).tolist(), "r": np.eye(3).reshape(-1).tolist(),
                "p": self.P.reshape(-1).tolist()}


@dataclass
class CameraFrame:
    """One RGB-D frame: colour rgb8 (H, W, 3), aligned depth 16UC1 millimetres (H, W), intrinsics, pose."""

    color: np.ndarray
    depth_mm: np.ndarray
    intrinsics: CameraIntrinsics
    pose: np.ndarray  # 4x4 camera optical frame -> world

    def depth_m(self) -> np.ndarray:
        """Depth in metres, float32; 0 stays 0 (no return)."""
        return self.depth_mm.astype(np.float32) * np.float32(0.001)


def look_at_optical(position, target, up) -> np.ndarray:
    """Rotation (columns = optical x, y, z in the world) of a camera at `position` looking at `target`,
    with world direction `up` shown as image-up (-y optical)."""
    z = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("camera position and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-6:
        raise ValueError(f"camera `up` {up} is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def camera_xml(config: CameraConfig, workspace: WorkspaceLimits) -> str:
    """The <camera> element: pose as MuJoCo xyaxes (optical x, -optical y), intrinsics in pixels."""
    position, target = config.placement(workspace)
    r_opt = look_at_optical(position, target, config.up)
    x_axis, y_axis = r_opt[:, 0], -r_opt[:, 1]
    cx, cy = config.principal_point
    # MuJoCo's principal point is an offset from the image centre, positive to the left and up (measured).
    offset = ((config.width - 1) / 2 - cx, (config.height - 1) / 2 - cy)
    fmt = lambda v: " ".join(f"{float(a):.9g}" for a in v)  # noqa: E731
    return (f'<camera name="{CAMERA_NAME}" pos="{fmt(position)}" xyaxes="{fmt(x_axis)} {fmt(y_axis)}" '
            f'focalpixel="{config.fx} {config.fy}" principalpixel="{offset[0]} {offset[1]}" '
            f'resolution="{config.width} {config.height}" sensorsize="{config.width * 1e-5} {config.height * 1e-5}"/>')


def camera_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str = CAMERA_NAME) -> np.ndarray:
    """4x4 camera optical frame -> world, read from the simulated camera (after mj_forward/mj_step)."""
    cam = model.camera(name).id
    pose = np.eye(4)
    pose[:3, :3] = data.cam_xmat[cam].reshape(3, 3) @ OPTICAL_FROM_MUJOCO
    pose[:3, 3] = data.cam_xpos[cam]
    return pose


def _depth_from_buffer(buffer: np.ndarray, model: mujoco.MjModel) -> np.ndarray:
    """OpenGL depth buffer (MuJoCo's reversed-Z, mjDEPTH_ZEROFAR) -> metric z-depth, as mujoco.Renderer does."""
    extent = model.stat.extent
    near, far = np.float32(model.vis.map.znear * extent), np.float32(model.vis.map.zfar * extent)
    c_coef = -(far + near) / (far - near)
    d_coef = -(np.float32(2) * far * near) / (far - near)
    c_coef = np.float32(-0.5) * c_coef - np.float32(0.5)
    d_coef = np.float32(-0.5) * d_coef
    return d_coef / (buffer.astype(np.float64) + c_coef)


class RgbdCamera:
    """Renders the model's fixed camera into CameraFrames: one render pass, colour and depth read together.

    Owns an offscreen GL context (MUJOCO_GL: egl or osmesa); `set_model` moves it to a rebuilt model without a
    new context. Call close() (or use `with`) to free it.

    With `config.depth_noise`, the depth error of frame n (0, 1, ... over the camera's life) comes from a generator
    seeded by (seed, n), and the fixed correlated pattern from one seeded by `seed` alone: the same seed and the same
    sequence of renders give bit-identical frames, and every render draws new per-pixel noise, as a real camera's.
    """

    def __init__(self, model: mujoco.MjModel, config: CameraConfig, name: str = CAMERA_NAME, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"camera seed must be an integer >= 0, got {seed!r}")
        if config.width > model.vis.global_.offwidth or config.height > model.vis.global_.offheight:
            raise ValueError(f"the model's offscreen buffer {model.vis.global_.offwidth}x"
                             f"{model.vis.global_.offheight} is smaller than the camera's "
                             f"{config.width}x{config.height}")
        self.config, self.name = config, name
        self._intrinsics = config.intrinsics()
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, config.width, config.height)
        self._color = np.empty((config.height, config.width, 3), dtype=np.uint8)
        self._depth = np.empty((config.height, config.width), dtype=np.float32)
        self._seed, self.frames_rendered = int(seed), 0
        self._correlated = None if config.depth_noise is None else correlated_field(
            np.random.default_rng([self._seed, _PATTERN_STREAM]), (config.height, config.width), config.depth_noise)
        self._gl = mujoco.GLContext(config.width, config.height)
        self._gl.make_current()
        self._context = None
        self.set_model(model)

    def set_model(self, model: mujoco.MjModel) -> None:
        """Render `model` from now on (after a world reset rebuilt it)."""
        self._gl.make_current()
        if self._context is not None:
            self._context.free()
        self.model = model
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = model.camera(self.name).id
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR

    def render(self, data: mujoco.MjData, show_robot: bool = True) -> CameraFrame:
        if self._context is None:
            raise RuntimeError("camera is closed")
        self._option.geomgroup[ARM_GROUP] = self._option.geomgroup[GRIPPER_GROUP] = int(show_robot)
        self._gl.make_current()
        mujoco.mjv_updateScene(self.model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._color, self._depth, self._rect, self._context)
        color = np.flipud(self._color).copy()  # OpenGL rows run bottom-up
        depth = _depth_from_buffer(np.flipud(self._depth), self.model)
        valid = np.isfinite(depth) & (depth > 0) & (depth < 0.999 * self.config.zfar)
        noise = self.config.depth_noise
        if noise is None:
            depth_mm = np.where(valid, np.clip(np.rint(depth * 1000.0), 0, 65535), 0).astype(np.uint16)
        else:
            rng = np.random.default_rng([self._seed, _FRAME_STREAM, self.frames_rendered])
            depth_mm = noisy_depth_mm(np.where(valid, depth, 0.0), rng, noise, fx=float(self._intrinsics.K[0, 0]),
                                      correlated=self._correlated)
        self.frames_rendered += 1
        return CameraFrame(color=color, depth_mm=depth_mm, intrinsics=self._intrinsics,
                           pose=camera_pose(self.model, data, self.name))

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()

    def __enter__(self) -> "RgbdCamera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
