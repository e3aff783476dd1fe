import cv2
import numpy as np
import pytest

from grasp_core.heightmap import depth_image_from_16uc1, fill_unobserved, make_heightmap, project_heightmap
from grasp_core.workspace import VPG_SIM_WORKSPACE, WorkspaceLimits

K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])
IMAGE_H, IMAGE_W = 480, 640
TABLE_GRAY = (90, 90, 90)
BOX_RED = (200, 20, 20)
# Box (metres, base frame) standing on the table z = 0.
BOX_X, BOX_Y, BOX_H = (-0.53, -0.45), (-0.03, 0.07), 0.05


def camera_pose(position, tilt_about_x=0.0):
    """Camera looking straight down (optical z -> base -z, x -> base x), optionally tilted about its x axis."""
    down = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    c, s = np.cos(tilt_about_x), np.sin(tilt_about_x)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    pose = np.eye(4)
    pose[:3, :3] = down @ tilt
    pose[:3, 3] = position
    return pose


def rays(pose):
    """Per-pixel ray directions in the base frame, scaled so the optical-axis component is 1 (z-depth = t)."""
    v, u = np.mgrid[0:IMAGE_H, 0:IMAGE_W].astype(np.float64)
    cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return cam @ pose[:3, :3].T


def render_box_scene(pose):
    """Exact depth and colour of the box on the table for a camera right above the box (side walls unseen)."""
    d = rays(pose)
    origin = pose[:3, 3]
    t_top = (BOX_H - origin[2]) / d[..., 2]
    top = origin + t_top[..., None] * d
    on_top = ((top[..., 0] >= BOX_X[0]) & (top[..., 0] <= BOX_X[1])
              & (top[..., 1] >= BOX_Y[0]) & (top[..., 1] <= BOX_Y[1]))
    t_table = -origin[2] / d[..., 2]
    depth = np.where(on_top, t_top, t_table).astype(np.float32)
    color = np.empty((IMAGE_H, IMAGE_W, 3), np.uint8)
    color[:] = TABLE_GRAY
    color[on_top] = BOX_RED
    return color, depth


def expected_box_cells(ws):
    """Cells whose area [x, x + res) x [y, y + res) overlaps the box footprint."""
    h, w = ws.shape
    x = ws.x_min + np.arange(w) * ws.resolution
    y = ws.y_min + np.arange(h) * ws.resolution
    in_x = (x + ws.resolution > BOX_X[0]) & (x <= BOX_X[1])
    in_y = (y + ws.resolution > BOX_Y[0]) & (y <= BOX_Y[1])
    return in_y[:, None] & in_x[None, :]


def within_one_pixel(measured, expected):
    kernel = np.ones((3, 3), np.uint8)
    inner = cv2.erode(expected.astype(np.uint8), kernel).astype(bool)
    outer = cv2.dilate(expected.astype(np.uint8), kernel).astype(bool)
    return bool(np.all(measured[inner]) and not np.any(measured & ~outer))


def test_box_heights_and_footprint_from_a_downward_camera():
    ws = VPG_SIM_WORKSPACE
    pose = camera_pose([-0.5, 0.0, 0.6])
    color, depth = render_box_scene(pose)
    color_hm, depth_hm = make_heightmap(color, depth, K, pose, ws)
    assert color_hm.shape == (224, 224, 3) and color_hm.dtype == np.uint8
    assert depth_hm.shape == (224, 224) and depth_hm.dtype == np.float32

    box = depth_hm > 0.025
    expected = expected_box_cells(ws)
    assert within_one_pixel(box, expected)
    assert abs(int(box.sum()) - int(expected.sum())) < 0.1 * expected.sum()
    # Heights are metres above z_min = -0.0001: the box top at 0.05, the table at 0.
    np.testing.assert_allclose(depth_hm[box], BOX_H - ws.z_min, atol=1e-5)
    np.testing.assert_allclose(depth_hm[~box & (depth_hm > 0)], -ws.z_min, atol=1e-5)
    # Colour follows the same cells.
    assert np.all(color_hm[box] == BOX_RED)
    assert np.all(color_hm[~box] == TABLE_GRAY)
    # The camera sees the whole workspace except the strip of table the box hides (its walls are 5 cm high,
    # 3-5 cm from the optical axis, 0.6 m away: < 2 cells): unobserved, black and 0 before filling, and filled
    # from the nearest observed cells (box or table) after.
    raw_color, raw_depth, observed = project_heightmap(color, depth, K, pose, ws)
    empty = ~observed
    shadow = cv2.dilate(expected.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~(raw_depth > 0.025)
    assert 0 < empty.sum() and np.all(shadow[empty])
    assert np.all(raw_depth[empty] == 0) and np.all(raw_color[empty] == 0)
    np.testing.assert_array_equal(raw_depth[observed], depth_hm[observed])
    filled = depth_hm[empty]
    assert np.all(np.isclose(filled, BOX_H - ws.z_min, atol=1e-5) | np.isclose(filled, -ws.z_min, atol=1e-5))


def test_tilted_camera_maps_table_points_to_their_cells():
    ws = WorkspaceLimits(-0.6, -0.4, -0.1, 0.1, -0.01, 0.3, 0.004)
    pose = camera_pose([-0.5, -0.25, 0.5], tilt_about_x=np.deg2rad(25))
    d = rays(pose)
    t = -pose[2, 3] / d[..., 2]
    table = pose[:3, 3] + t[..., None] * d
    color = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
    color[..., 0] = np.where(table[..., 0] > -0.5, 255, 0)     # red where x > -0.5
    color[..., 1] = np.where(table[..., 1] > 0.02, 255, 0)     # green where y > 0.02
    color_hm, depth_hm, reached = project_heightmap(color, t.astype(np.float32), K, pose, ws)
    assert reached.mean() > 0.95
    np.testing.assert_allclose(depth_hm[reached], 0.01, atol=1e-5)
    h, w = ws.shape
    # x = -0.5 is the left edge of column 25, y = 0.02 the top edge of row 30 (cells are [x, x + res)).
    rows, cols = np.mgrid[0:h, 0:w]
    red = color_hm[..., 0] == 255
    green = color_hm[..., 1] == 255
    away_from_x_edge = reached & (np.abs(cols - 24.5) > 1)
    away_from_y_edge = reached & (np.abs(rows - 29.5) > 1)
    np.testing.assert_array_equal(red[away_from_x_edge], (cols >= 25)[away_from_x_edge])
    np.testing.assert_array_equal(green[away_from_y_edge], (rows >= 30)[away_from_y_edge])
    # Right at the edge each cell still takes the colour of its own side.
    assert np.all(red[reached & (cols == 25)]) and not np.any(red[reached & (cols == 24)])
    assert np.all(green[reached & (rows == 30)]) and not np.any(green[reached & (rows == 29)])


def test_invalid_depth_is_never_projected():
    ws = VPG_SIM_WORKSPACE
    pose = camera_pose([-0.5, 0.0, 0.6])
    color, depth = render_box_scene(pose)
    on_box = np.all(color == BOX_RED, axis=-1)
    depth = depth.copy()
    depth[on_box] = np.nan                       # box invisible: its cells must not get table or garbage heights
    depth[:, :100] = 0.0
    depth[:50, :] = np.inf
    color_hm, depth_hm = make_heightmap(color, depth, K, pose, ws)
    assert np.all(np.isfinite(depth_hm))
    assert depth_hm.max() < 0.001                # only the table remains
    assert not np.any(np.all(color_hm == BOX_RED, axis=-1))
    expected = expected_box_cells(ws)
    inner = cv2.erode(expected.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    _, _, observed = project_heightmap(color, depth, K, pose, ws)
    assert not observed[inner].any()             # no data there: filled from the table around it
    np.testing.assert_allclose(depth_hm[inner], -ws.z_min, atol=1e-5)
    assert np.all(color_hm[inner] == TABLE_GRAY)

    all_invalid = np.full_like(depth, np.nan)
    c_hm, d_hm = make_heightmap(color, all_invalid, K, pose, ws)
    assert not d_hm.any() and not c_hm.any()     # nothing observed, nothing to fill from


def test_points_below_z_min_clamp_to_zero_and_above_z_max_are_dropped():
    ws = WorkspaceLimits(-0.6, -0.4, -0.1, 0.1, 0.02, 0.04, 0.004)   # table (z=0) below z_min, box top above z_max
    pose = camera_pose([-0.5, 0.0, 0.6])
    color, depth = render_box_scene(pose)
    _, depth_hm = make_heightmap(color, depth, K, pose, ws)
    assert depth_hm.min() >= 0 and depth_hm.max() == 0


def test_bad_inputs_raise():
    ws = VPG_SIM_WORKSPACE
    pose = camera_pose([-0.5, 0.0, 0.6])
    color, depth = render_box_scene(pose)
    with pytest.raises(ValueError, match="color"):
        make_heightmap(color[:-1], depth, K, pose, ws)
    with pytest.raises(ValueError, match="color"):
        make_heightmap(color.astype(np.float32), depth, K, pose, ws)
    with pytest.raises(ValueError, match="depth"):
        make_heightmap(color, (depth * 1000).astype(np.uint16), K, pose, ws)
    with pytest.raises(ValueError, match="intrinsics"):
        make_heightmap(color, depth, K[:2], pose, ws)
    with pytest.raises(ValueError, match="intrinsics"):
        make_heightmap(color, depth, np.diag([-600.0, 600.0, 1.0]), pose, ws)
    with pytest.raises(ValueError, match="pose"):
        make_heightmap(color, depth, K, pose[:3], ws)
    scaled = pose.copy()
    scaled[:3, :3] *= 2
    with pytest.raises(ValueError, match="rigid"):
        make_heightmap(color, depth, K, scaled, ws)
    mirrored = pose.copy()
    mirrored[:3, 0] *= -1
    with pytest.raises(ValueError, match="rigid"):
        make_heightmap(color, depth, K, mirrored, ws)


def test_depth_16uc1_conversion():
    mm = np.array([[0, 1], [1234, 65535]], np.uint16)
    metres = depth_image_from_16uc1(mm)
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres, [[0.0, 0.001], [1.234, 65.535]], rtol=1e-6)
    with pytest.raises(ValueError, match="uint16"):
        depth_image_from_16uc1(mm.astype(np.float32))



def test_holes_inside_an_object_are_filled_with_its_height_never_table():
    """A D435 hole (depth 0) on the box top is no data: its cells take the box's height, not 0 (VPG's fill)."""
    ws = VPG_SIM_WORKSPACE
    pose = camera_pose([-0.5, 0.0, 0.6])
    color, depth = render_box_scene(pose)
    on_box = np.all(color == BOX_RED, axis=-1)
    rows, cols = np.nonzero(on_box)
    v0, u0 = int(rows.mean()), int(cols.mean())
    depth = depth.copy()
    depth[v0 - 15:v0 + 15, u0 - 15:u0 + 15] = 0.0    # a 30 px hole in the middle of the box top
    depth[::9, ::7] = 0.0                            # and scattered single-pixel holes everywhere
    _, raw, observed = project_heightmap(color, depth, K, pose, ws)
    color_hm, depth_hm = make_heightmap(color, depth, K, pose, ws)
    box = expected_box_cells(ws)
    inner = cv2.erode(box.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (inner & ~observed).sum() >= 100           # the hole left box cells unobserved
    np.testing.assert_allclose(depth_hm[inner], BOX_H - ws.z_min, atol=1e-5)
    assert np.all(color_hm[inner] == BOX_RED)
    np.testing.assert_array_equal(depth_hm[observed], raw[observed])  # observed cells are untouched
    # Deterministic: the same input gives the same filled heightmap, bit for bit.
    again = make_heightmap(color, depth, K, pose, ws)
    np.testing.assert_array_equal(again[1], depth_hm)
    np.testing.assert_array_equal(again[0], color_hm)


def test_fill_unobserved_takes_the_nearest_observed_cell():
    depth = np.zeros((5, 7), np.float32)
    color = np.zeros((5, 7, 3), np.uint8)
    observed = np.zeros((5, 7), bool)
    observed[:, 0], depth[:, 0], color[:, 0] = True, 0.01, (1, 2, 3)
    observed[:, 6], depth[:, 6], color[:, 6] = True, 0.05, (9, 9, 9)
    c, d = fill_unobserved(color, depth, observed)
    np.testing.assert_array_equal(d[:, :3], np.float32(0.01))
    np.testing.assert_array_equal(d[:, 4:], np.float32(0.05))
    assert np.all(c[:, 1:3] == (1, 2, 3)) and np.all(c[:, 4:6] == (9, 9, 9))
    assert not depth[:, 1:6].any()                   # the inputs are not modified
    with pytest.raises(ValueError, match="same"):
        fill_unobserved(color, depth, observed[:, :3])
