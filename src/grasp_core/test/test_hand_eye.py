"""Hand-eye calibration (grasp_core.hand_eye): the maths on exact synthetic poses, and the robot command's procedure
end to end on rendered checkerboard images (a fake arm that goes where it is sent, a camera whose images are drawn
from the true camera and board poses): the camera pose must come back within 5 mm and 1 degree."""
import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from grasp_core.hand_eye import (CameraIntrinsics, Checkerboard, HandEyeResult, Observation, board_pose,
                                 calibration_poses, collect_observations, detect_checkerboard, linear_hand_eye,
                                 pose_difference, render_checkerboard, rigid_transform, solve_hand_eye, transform)

D435_COLOR = CameraIntrinsics(fx=615.0, fy=615.0, cx=320.0, cy=240.0)
BOARD = Checkerboard(columns=4, rows=3, square=0.02)
# The camera of config/ur3_calibration.yaml: 0.75 m above the table, looking straight down at the workspace centre.
CAMERA = transform(Rotation.from_quat([0.7071067811865476, -0.7071067811865476, 0.0, 0.0]).as_matrix(),
                   [-0.312, 0.0, 0.495])
# The board taped on the gripper: 12 cm out along the flange axis, a little off-centre and turned; printed side
# along the tool's z axis (z of the board frame points back into the gripper).
BOARD_IN_TOOL = transform(Rotation.from_euler("xyz", [180.0, 0.0, 12.0], degrees=True).as_matrix(),
                          [0.012, -0.03, 0.12])
FLANGE_UP = np.eye(3)  # VPG's calibrate.py: the gripper points up, the board faces the camera above


def random_pose(rng, scale=0.3):
    return transform(Rotation.random(random_state=rng).as_matrix(), rng.uniform(-scale, scale, 3))


def test_rigid_transform_is_vpgs_fit():
    rng = np.random.default_rng(0)
    truth = random_pose(rng)
    points = rng.uniform(-0.2, 0.2, (12, 3))
    moved = (truth[:3, :3] @ points.T).T + truth[:3, 3]
    assert np.allclose(rigid_transform(points, moved), truth, atol=1e-9)
    with pytest.raises(ValueError, match="one line"):
        rigid_transform(np.outer(np.arange(4), [1.0, 0, 0]), np.outer(np.arange(4), [0, 1.0, 0]))
    with pytest.raises(ValueError, match="N >= 3"):
        rigid_transform(points[:2], moved[:2])


def test_linear_solution_is_exact_on_exact_poses_and_refuses_alike_rotations():
    rng = np.random.default_rng(1)
    x, y = random_pose(rng), random_pose(rng, 0.1)
    tools = [random_pose(rng) for _ in range(5)]
    boards = [np.linalg.inv(x) @ t @ y for t in tools]  # T_tool Y = X T_board
    got_x, got_y = linear_hand_eye(tools, boards)
    assert np.allclose(got_x, x, atol=1e-8) and np.allclose(got_y, y, atol=1e-8)
    # The same tool rotation in every view (a pure translation grid): the camera and board poses cannot be told
    # apart, and the solver says what to change.
    flat = [transform(np.eye(3), rng.uniform(-0.2, 0.2, 3)) for _ in range(6)]
    with pytest.raises(ValueError, match="too alike.*tilt"):
        linear_hand_eye(flat, [np.linalg.inv(x) @ t @ y for t in flat])


def test_checkerboards_that_could_flip_are_refused():
    assert BOARD.points().shape == (12, 3) and BOARD.points()[1].tolist() == [0.02, 0.0, 0.0]
    for columns, rows in ((4, 4), (5, 3), (1, 4)):
        with pytest.raises(ValueError, match="one count even"):
            Checkerboard(columns, rows, 0.03)
    with pytest.raises(ValueError, match="square size"):
        Checkerboard(4, 3, 0.0)


def test_calibration_poses_vary_the_rotation_about_three_axes():
    poses = calibration_poses((-0.312, 0.0, 0.0), (0.12, 0.12, 0.1), (3, 3, 2), FLANGE_UP, 15.0)
    assert len(poses) == 18
    positions = np.array([p[:3, 3] for p in poses])
    assert np.allclose(positions.min(axis=0), [-0.372, -0.06, -0.05]) and np.allclose(positions.max(axis=0),
                                                                                       [-0.252, 0.06, 0.05])
    axes = {tuple(np.round(Rotation.from_matrix(p[:3, :3]).as_rotvec() / math.radians(15.0), 6)) for p in poses}
    assert {(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1), (0, 0, 0)} <= axes
    with pytest.raises(ValueError, match="counts >= 1"):
        calibration_poses((0, 0, 0), (0.1, 0.1, 0.1), (3, 0, 1), FLANGE_UP, 15.0)


def test_detection_and_pnp_on_a_rendered_board():
    camera_board = transform(Rotation.from_euler("xyz", [8.0, -5.0, 20.0], degrees=True).as_matrix(),
                             [-0.02, 0.01, 0.35])
    image = render_checkerboard(BOARD, D435_COLOR, camera_board, rng=np.random.default_rng(2))
    corners = detect_checkerboard(image, BOARD)
    assert corners is not None and corners.shape == (12, 2)
    expected = cv2.projectPoints(BOARD.points(), cv2.Rodrigues(camera_board[:3, :3])[0], camera_board[:3, 3],
                                 D435_COLOR.matrix(), None)[0].reshape(-1, 2)
    assert np.max(np.linalg.norm(corners - expected, axis=1)) < 0.3  # sub-pixel corners, in OpenCV's order
    distance, angle = pose_difference(board_pose(corners, BOARD, D435_COLOR), camera_board)
    assert distance < 0.002 and angle < 0.5
    assert detect_checkerboard(np.full((480, 640), 110, np.uint8), BOARD) is None
    back = camera_board @ transform(Rotation.from_euler("x", 180.0, degrees=True).as_matrix(), [0.0, 0.0, 0.0])
    assert detect_checkerboard(render_checkerboard(BOARD, D435_COLOR, back), BOARD) is None  # the back of the print
    with pytest.raises(ValueError, match="uint8"):
        detect_checkerboard(image.astype(np.float32), BOARD)


def test_the_calibration_procedure_recovers_the_camera_pose_end_to_end():
    """What `ros2 run grasp_execution hand_eye_calibration` does, with the arm and the camera simulated: the poses
    of config/ur3_real.yaml's calibration grid, one of them unreachable, images rendered from the true poses with
    sensor noise, the tool poses reported with the UR3's repeatability (0.1 mm)."""
    rng = np.random.default_rng(3)
    poses = calibration_poses((-0.312, 0.0, 0.0), (0.12, 0.12, 0.1), (3, 3, 2), FLANGE_UP, 15.0)
    unreachable = {5}
    state = {"pose": None}
    log = []

    def move_to(pose):
        if len(log) in unreachable:
            return False
        state["pose"] = pose
        return True

    def capture():
        image = render_checkerboard(BOARD, D435_COLOR, np.linalg.inv(CAMERA) @ state["pose"] @ BOARD_IN_TOOL, rng=rng)
        reported = state["pose"].copy()
        reported[:3, 3] += rng.normal(0.0, 0.0001, 3)
        return image, reported

    observations = collect_observations(poses, move_to, capture, BOARD, log=log.append)
    # Near the top of the grid the board leaves the image at the far edge: those views are skipped, as on the robot.
    assert len(log) == 18 and "not reachable" in log[5]
    assert [i for i, line in enumerate(log) if "board not found" in line] == [11, 14, 17]
    assert len(observations) == 14
    result = solve_hand_eye(observations, BOARD, D435_COLOR)
    assert isinstance(result, HandEyeResult) and result.views == 14
    distance, angle = pose_difference(result.camera_pose, CAMERA)
    print(f"camera pose error {1000 * distance:.2f} mm, {angle:.3f} deg; reprojection RMS "
          f"{result.reprojection_rms_px:.3f} px, corner RMS {result.corner_rms_mm:.2f} mm")
    assert distance < 0.005 and angle < 1.0  # the bar
    assert distance < 0.002 and angle < 0.2  # what it does on these images
    board_distance, board_angle = pose_difference(result.board_in_tool, BOARD_IN_TOOL)
    assert board_distance < 0.003 and board_angle < 0.5
    assert result.reprojection_rms_px < 0.5 and result.corner_rms_mm < 2.0
    # Too few views: the procedure says what to check.
    with pytest.raises(ValueError, match="2 views.*board is in the camera's view"):
        solve_hand_eye(observations[:2], BOARD, D435_COLOR)


def test_a_wrong_intrinsics_or_robot_shows_in_the_residual():
    """The residuals are what the command reports: a camera whose focal length is 5 % off, or a robot whose
    reported poses are off by millimetres, give visibly larger ones than a consistent setup."""
    rng = np.random.default_rng(4)
    poses = calibration_poses((-0.312, 0.0, 0.0), (0.12, 0.12, 0.1), (3, 3, 2), FLANGE_UP, 15.0)
    observations = []
    for pose in poses:
        image = render_checkerboard(BOARD, D435_COLOR, np.linalg.inv(CAMERA) @ pose @ BOARD_IN_TOOL)
        corners = detect_checkerboard(image, BOARD)
        if corners is not None:
            observations.append(Observation(pose, corners))
    good = solve_hand_eye(observations, BOARD, D435_COLOR)
    shaky = [Observation(transform(o.tool_pose[:3, :3], o.tool_pose[:3, 3] + rng.normal(0, 0.004, 3)), o.corners)
             for o in observations]
    assert solve_hand_eye(shaky, BOARD, D435_COLOR).corner_rms_mm > 3 * good.corner_rms_mm
    zoomed = CameraIntrinsics(D435_COLOR.fx * 1.05, D435_COLOR.fy * 1.05, D435_COLOR.cx, D435_COLOR.cy)
    assert solve_hand_eye(observations, BOARD, zoomed).corner_rms_mm > 3 * good.corner_rms_mm
