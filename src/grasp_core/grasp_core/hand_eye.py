"""Hand-eye calibration of a fixed camera (eye to hand): where the camera sits in the robot's base frame.

A checkerboard is fixed anywhere on the tool. The robot visits a grid of tool poses (`calibration_poses`: positions
over the workspace, each turned by a few degrees so that the rotations differ), the camera sees the board at each
(`detect_checkerboard`), and for every view i

    T_base_tool[i] @ Y = X @ T_camera_board[i]

with X = the camera optical frame in the base frame (what is wanted) and Y = the board in the tool frame (a
by-product: nobody has to measure where the board is taped). T_camera_board[i] comes from the board's corners by
PnP with the camera's intrinsics. X and Y are solved together: a closed-form start (rotations from the null space of
the stacked linear equations, then translations by least squares, as in Li, Wang and Wu 2010, "Simultaneous
robot-world and hand-eye calibration using dual-quaternions and Kronecker product"), refined by minimising the
corners' reprojection error over all views. VPG's calibrate.py solves the same problem with the board offset
measured by hand and a rigid fit of the board centres (`rigid_transform`); the joint solve needs no offset.

`collect_observations` is the procedure the robot command runs (grasp_execution.hand_eye_node) with any arm and
camera given as functions, so it is tested end to end with rendered images. ROS-free: numpy, scipy, OpenCV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class Checkerboard:
    """A printed checkerboard: `columns` x `rows` inner corners (OpenCV's pattern size), squares of `square` metres.
    The board frame has x along the columns, y along the rows, z out of the printed side's back (OpenCV's order)."""

    columns: int
    rows: int
    square: float

    def __post_init__(self) -> None:
        if self.columns < 2 or self.rows < 2 or (self.columns + self.rows) % 2 == 0:
            # Both counts odd or both even: the board looks the same turned by 180 deg, so the corner order (and
            # the board's pose) could flip between views.
            raise ValueError(f"checkerboard needs >= 2 inner corners each way, one count even and the other odd "
                             f"(e.g. 4 x 3), got {self.columns} x {self.rows}")
        if not self.square > 0:
            raise ValueError(f"checkerboard square size must be > 0 m, got {self.square}")

    def points(self) -> np.ndarray:
        """(columns * rows, 3) corners in the board frame, in the order detect_checkerboard returns them."""
        v, u = np.mgrid[0:self.rows, 0:self.columns]
        return np.stack([u.ravel() * self.square, v.ravel() * self.square, np.zeros(u.size)], axis=1)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics (pixels) and distortion coefficients (OpenCV / ROS plumb_bob order; () for none)."""

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def coefficients(self) -> np.ndarray:
        return np.array(self.distortion if self.distortion else [0.0] * 5, dtype=np.float64)


def detect_checkerboard(gray: np.ndarray, board: Checkerboard) -> np.ndarray | None:
    """(N, 2) sub-pixel corners of `board` in a grayscale (H, W) uint8 image, or None if it is not fully seen."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect_checkerboard needs a (H, W) uint8 image, got {gray.shape} {gray.dtype}")
    found, corners = cv2.findChessboardCorners(gray, (board.columns, board.rows),
                                               flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
    corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), criteria)
    return corners.reshape(-1, 2).astype(np.float64)


def transform(rotation: np.ndarray, translation) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, translation
    return pose


def board_pose(corners: np.ndarray, board: Checkerboard, intrinsics: CameraIntrinsics) -> np.ndarray:
    """T_camera_board (4x4) from the board's detected corners (PnP)."""
    ok, rvec, tvec = cv2.solvePnP(board.points(), np.asarray(corners, np.float64).reshape(-1, 1, 2),
                                  intrinsics.matrix(), intrinsics.coefficients(), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("PnP found no board pose for these corners")
    return transform(cv2.Rodrigues(rvec)[0], tvec.ravel())


def rigid_transform(points_a, points_b) -> np.ndarray:
    """The 4x4 rigid transform T with points_b ~ T @ points_a in the least-squares sense (Kabsch; VPG's
    get_rigid_transform). Both (N, 3), N >= 3 points not all on one line."""
    a, b = np.asarray(points_a, np.float64), np.asarray(points_b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3 or len(a) < 3:
        raise ValueError(f"rigid_transform needs two (N, 3) arrays with N >= 3, got {a.shape} and {b.shape}")
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, s, vt = np.linalg.svd((a - ca).T @ (b - cb))
    if s[1] < 1e-9 * max(s[0], 1e-300):
        raise ValueError("rigid_transform: the points are (nearly) on one line; the rotation is not determined")
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return transform(rotation, cb - rotation @ ca)


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(matrix)
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def linear_hand_eye(tool_poses, board_poses) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form (X, Y) of T_base_tool[i] @ Y = X @ T_camera_board[i]: the rotations from the null space of the
    stacked Kronecker equations, then the translations by linear least squares."""
    tools, boards = [np.asarray(t, np.float64) for t in tool_poses], [np.asarray(b, np.float64) for b in board_poses]
    rows = []
    for t, b in zip(tools, boards):
        # vec(R_T R_Y) = (I kron R_T) vec(R_Y);  vec(R_X R_C) = (R_C^T kron I) vec(R_X)  (column-major vec)
        rows.append(np.hstack([np.kron(np.eye(3), t[:3, :3]), -np.kron(b[:3, :3].T, np.eye(3))]))
    _, s, vt = np.linalg.svd(np.vstack(rows))
    if s[-2] < 1e-6 * s[0]:
        raise ValueError("the tool rotations are too alike to separate the camera pose from the board's: turn the "
                         "tool about at least two different axes between views (calibration_poses' tilt)")
    solution = vt[-1]
    rot_y, rot_x = solution[:9].reshape(3, 3, order="F"), solution[9:].reshape(3, 3, order="F")
    scale = np.cbrt(np.linalg.det(rot_x))
    rot_x, rot_y = _nearest_rotation(rot_x / scale), _nearest_rotation(rot_y / scale)
    a = np.vstack([np.hstack([t[:3, :3], -np.eye(3)]) for t in tools])
    rhs = np.concatenate([rot_x @ b[:3, 3] - t[:3, 3] for t, b in zip(tools, boards)])
    solved = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return transform(rot_x, solved[3:]), transform(rot_y, solved[:3])


@dataclass(frozen=True)
class Observation:
    """One view: the tool pose the robot reported (4x4, base <- tool) and the board's corners in the image."""

    tool_pose: np.ndarray
    corners: np.ndarray


@dataclass(frozen=True)
class HandEyeResult:
    """camera_pose: base <- camera optical frame (4x4); board_in_tool: tool <- board (4x4). Residuals over all
    corners of all views: reprojection RMS in pixels, and the RMS distance in millimetres between each corner as
    the robot puts it (camera_pose^-1 T_base_tool board_in_tool) and as the camera's PnP puts it."""

    camera_pose: np.ndarray
    board_in_tool: np.ndarray
    reprojection_rms_px: float
    corner_rms_mm: float
    views: int


def _pose_vector(pose: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(pose[:3, :3]).as_rotvec(), pose[:3, 3]])


def _vector_pose(vector: np.ndarray) -> np.ndarray:
    return transform(Rotation.from_rotvec(vector[:3]).as_matrix(), vector[3:])


def solve_hand_eye(observations: list[Observation], board: Checkerboard, intrinsics: CameraIntrinsics,
                   min_views: int = 4) -> HandEyeResult:
    """The camera's pose in the base frame from `observations` (module docstring). ValueError with what to change
    when there are too few views or their rotations are too alike."""
    if len(observations) < max(min_views, 3):
        raise ValueError(f"{len(observations)} views with the board found; need at least {max(min_views, 3)}: "
                         "check that the board is in the camera's view at the calibration poses")
    points = board.points()
    board_poses = [board_pose(o.corners, board, intrinsics) for o in observations]
    tools = [np.asarray(o.tool_pose, np.float64) for o in observations]
    camera_pose, board_in_tool = linear_hand_eye(tools, board_poses)
    # Refine on the undistorted, normalised image coordinates (reprojection error divided by the focal length).
    k, dist = intrinsics.matrix(), intrinsics.coefficients()
    seen = [cv2.undistortPoints(np.asarray(o.corners, np.float64).reshape(-1, 1, 2), k, dist).reshape(-1, 2)
            for o in observations]
    homogeneous = np.hstack([points, np.ones((len(points), 1))])

    def residuals(vector: np.ndarray) -> np.ndarray:
        base_camera, tool_board = _vector_pose(vector[:6]), _vector_pose(vector[6:])
        camera_base = np.linalg.inv(base_camera)
        out = []
        for tool, normalised in zip(tools, seen):
            in_camera = (camera_base @ tool @ tool_board @ homogeneous.T)[:3]
            out.append((in_camera[:2] / in_camera[2]).T - normalised)
        return np.concatenate(out).ravel()

    fit = least_squares(residuals, np.concatenate([_pose_vector(camera_pose), _pose_vector(board_in_tool)]),
                        method="lm", xtol=1e-12, ftol=1e-12)
    camera_pose, board_in_tool = _vector_pose(fit.x[:6]), _vector_pose(fit.x[6:])
    focal = math.sqrt(intrinsics.fx * intrinsics.fy)
    reprojection = float(np.sqrt(np.mean(np.sum(fit.fun.reshape(-1, 2) ** 2, axis=1)))) * focal
    camera_base = np.linalg.inv(camera_pose)
    distances = []
    for tool, seen_pose in zip(tools, board_poses):
        robot_says = (camera_base @ tool @ board_in_tool @ homogeneous.T)[:3].T
        camera_says = (seen_pose @ homogeneous.T)[:3].T
        distances.append(np.linalg.norm(robot_says - camera_says, axis=1))
    corner_rms = float(np.sqrt(np.mean(np.concatenate(distances) ** 2))) * 1000.0
    return HandEyeResult(camera_pose, board_in_tool, reprojection, corner_rms, len(observations))


def calibration_poses(center, size, counts, tool_orientation: np.ndarray, tilt_deg: float) -> list[np.ndarray]:
    """Tool poses (4x4, base <- tool) on a grid: `counts` = (nx, ny, nz) positions spanning `size` (metres) around
    `center`, with the tool at `tool_orientation` (3x3: the board facing the camera) turned by `tilt_deg` about
    the base x, then y, then z axis in turn (and not at all every fourth pose), so that the rotations differ about
    three axes (linear_hand_eye needs two)."""
    center, size = np.asarray(center, np.float64), np.asarray(size, np.float64)
    counts = [int(c) for c in counts]
    if center.shape != (3,) or size.shape != (3,) or len(counts) != 3 or min(counts) < 1 or np.any(size < 0):
        raise ValueError(f"calibration grid needs a centre (3), sizes >= 0 (3) and counts >= 1 (3), got "
                         f"{center.tolist()}, {size.tolist()}, {counts}")
    axes = [np.linspace(c - s / 2, c + s / 2, n) if n > 1 else np.array([c]) for c, s, n in zip(center, size, counts)]
    tilt = math.radians(tilt_deg)
    turns = [Rotation.from_rotvec(axis * tilt).as_matrix() for axis in np.eye(3)] + [np.eye(3)]
    poses = []
    for z in axes[2]:
        for y in axes[1]:
            for x in axes[0]:
                sign = 1.0 if (len(poses) // 4) % 2 == 0 else -1.0
                turn = turns[len(poses) % 4]
                turn = turn if sign > 0 else turn.T
                poses.append(transform(turn @ tool_orientation, (x, y, z)))
    return poses


def collect_observations(poses: list[np.ndarray], move_to: Callable[[np.ndarray], bool],
                         capture: Callable[[], tuple[np.ndarray, np.ndarray]], board: Checkerboard,
                         log: Callable[[str], None] = print,
                         should_stop: Callable[[], bool] = lambda: False) -> list[Observation]:
    """Visit `poses`: move_to(pose) (False: not reachable, skipped), then capture() -> (grayscale image taken after
    the arm stopped, the tool pose the robot reports then), and keep the views in which the whole board is seen."""
    observations = []
    for i, pose in enumerate(poses, 1):
        if should_stop():
            break
        where = "({:.3f}, {:.3f}, {:.3f})".format(*pose[:3, 3])
        if not move_to(pose):
            log(f"pose {i}/{len(poses)} at {where}: not reachable, skipped")
            continue
        gray, tool_pose = capture()
        corners = detect_checkerboard(gray, board)
        if corners is None:
            log(f"pose {i}/{len(poses)} at {where}: board not found in the image, skipped")
            continue
        observations.append(Observation(np.asarray(tool_pose, np.float64), corners))
        log(f"pose {i}/{len(poses)} at {where}: board found ({len(observations)} views)")
    return observations


def render_checkerboard(board: Checkerboard, intrinsics: CameraIntrinsics, camera_board: np.ndarray,
                        shape=(480, 640), supersample: int = 4, rng: np.random.Generator | None = None) -> np.ndarray:
    """A synthetic grayscale (H, W) uint8 view of the printed board (with one white square of margin) from a camera
    at T_camera_board = `camera_board`, on a grey background: drawn at `supersample` times the resolution and
    averaged down (anti-aliased edges), plus sensor noise (sigma 2 grey levels) when `rng` is given. The board's
    back (its z axis towards the camera) shows nothing. For the tests of the calibration, which have no camera."""
    h, w = shape
    image = np.full((h * supersample, w * supersample), 110, np.uint8)
    k = intrinsics.matrix() * np.array([[supersample], [supersample], [1.0]])
    k[0, 2], k[1, 2] = (intrinsics.cx + 0.5) * supersample - 0.5, (intrinsics.cy + 0.5) * supersample - 0.5
    if camera_board[:3, 2] @ camera_board[:3, 3] > 0:  # the printed side faces the camera
        def draw(corners, colour):
            in_camera = camera_board[:3, :3] @ np.asarray(corners, np.float64).T + camera_board[:3, 3:4]
            pixels = (k @ (in_camera / in_camera[2]))[:2].T
            cv2.fillConvexPoly(image, np.round(pixels * 16).astype(np.int32), colour, cv2.LINE_8, shift=4)

        s, columns, rows = board.square, board.columns, board.rows
        draw([(-2 * s, -2 * s, 0), ((columns + 1) * s, -2 * s, 0), ((columns + 1) * s, (rows + 1) * s, 0),
              (-2 * s, (rows + 1) * s, 0)], 235)
        for i in range(-1, columns):
            for j in range(-1, rows):
                if (i + j) % 2 == 0:
                    draw([(i * s, j * s, 0), ((i + 1) * s, j * s, 0), ((i + 1) * s, (j + 1) * s, 0),
                          (i * s, (j + 1) * s, 0)], 25)
    small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)
    if rng is not None:
        small += rng.normal(0.0, 2.0, small.shape)
    return np.clip(np.round(small), 0, 255).astype(np.uint8)


def pose_quaternion(pose: np.ndarray) -> tuple[float, float, float, float]:
    """The rotation of a 4x4 pose as a quaternion (x, y, z, w)."""
    return tuple(float(v) for v in Rotation.from_matrix(np.asarray(pose)[:3, :3]).as_quat())


def pose_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(translation distance in metres, rotation angle in degrees) between two 4x4 poses."""
    angle = Rotation.from_matrix(a[:3, :3].T @ b[:3, :3]).magnitude()
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3])), math.degrees(angle)
