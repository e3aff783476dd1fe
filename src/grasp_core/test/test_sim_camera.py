"""The simulated RGB-D camera: RealSense-like output, metric depth that matches its intrinsics and pose.

These check the geometry, so they render exact depth (`depth_noise=None`); the D435-like noise is
test_depth_noise.py's."""
import math

import numpy as np
import pytest

from grasp_core.sim import CameraConfig, GraspWorld, SimConfig
from grasp_core.sim.camera import RgbdCamera, look_at_optical


def expected_table_depth(frame, table_z=0.0):
    """z-depth (metres) of the table plane z = table_z seen through each pixel, from K and the pose alone."""
    h, w = frame.depth_mm.shape
    k = frame.intrinsics.K
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u, dtype=float)], -1)
    r, t = frame.pose[:3, :3], frame.pose[:3, 3]
    dz = rays @ r[2]  # world z change per unit of optical depth
    return (table_z - t[2]) / dz


@pytest.fixture(scope="module")
def world():
    w = GraspWorld(SimConfig(num_objects=1, seed=7, camera=CameraConfig(depth_noise=None)))
    yield w
    w.close()


def test_realsense_like_output(world):
    frame = world.render()
    assert frame.color.dtype == np.uint8 and frame.color.shape == (480, 640, 3)
    assert frame.depth_mm.dtype == np.uint16 and frame.depth_mm.shape == (480, 640)
    info = frame.intrinsics
    assert (info.width, info.height, info.distortion_model) == (640, 480, "plumb_bob")
    np.testing.assert_array_equal(info.D, np.zeros(5))
    np.testing.assert_allclose(info.K, [[615, 0, 319.5], [0, 615, 239.5], [0, 0, 1]])
    msg = info.as_camera_info()
    assert len(msg["k"]) == 9 and len(msg["p"]) == 12 and msg["p"][0] == 615
    r = frame.pose[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) > 0.999
    np.testing.assert_allclose(frame.pose[3], [0, 0, 0, 1])
    assert frame.pose[2, 2] < -0.999  # optical z (forward) points down at the table
    assert np.all(frame.depth_mm > 0)  # the table fills the view


def test_depth_at_the_table_equals_the_camera_height(world):
    frame = world.render()
    height_mm = frame.pose[2, 3] * 1000.0
    table = np.abs(frame.depth_mm.astype(float) - height_mm) <= 1.0
    assert table.mean() > 0.97  # everything but the one object is table, at exactly the known distance
    # The optical axis hits the workspace centre.
    ws = world.workspace
    centre = frame.pose[:3, 3] + frame.pose[:3, 2] * frame.pose[2, 3]
    np.testing.assert_allclose(centre[:2], [(ws.x_min + ws.x_max) / 2, (ws.y_min + ws.y_max) / 2], atol=1e-9)


def test_tilted_camera_with_offset_principal_point_matches_its_intrinsics():
    cam = CameraConfig(fx=600.0, fy=612.0, cx=331.3, cy=228.6, position=(-1.0, 0.15, 0.55), target=(-0.5, 0.0, 0.0),
                       depth_noise=None)
    with GraspWorld(SimConfig(num_objects=1, seed=3, camera=cam)) as world:
        frame = world.render()
    np.testing.assert_allclose(frame.intrinsics.K, [[600, 0, 331.3], [0, 612, 228.6], [0, 0, 1]])
    np.testing.assert_allclose(frame.pose[:3, 3], cam.position, atol=1e-9)
    expected_mm = expected_table_depth(frame) * 1000.0
    error = np.abs(frame.depth_mm - expected_mm)
    assert np.mean(error <= 1.0) > 0.97, np.median(error)
    # Depth varies over the image (tilted), so a wrong K or pose would show here.
    assert expected_mm.max() - expected_mm.min() > 150


def test_the_parked_arm_is_out_of_view(world):
    frame = world.render()
    with RgbdCamera(world.model, world.config.camera) as camera:
        hidden = camera.render(world.data, show_robot=False)
    np.testing.assert_array_equal(frame.color, hidden.color)
    np.testing.assert_array_equal(frame.depth_mm, hidden.depth_mm)


def test_heightmap_of_the_table_is_flat(world):
    color_hm, depth_hm = world.heightmap()
    assert color_hm.shape == (224, 224, 3) and depth_hm.shape == (224, 224) and depth_hm.dtype == np.float32
    assert np.mean(depth_hm < 0.002) > 0.9  # table at height ~0 (1 mm depth steps)
    assert depth_hm.max() > 0.01            # the object stands out


def test_look_at_and_camera_config_validation():
    r = look_at_optical((0, 0, 1), (0, 0, 0), up=(1, 0, 0))
    np.testing.assert_allclose(r[:, 2], [0, 0, -1])   # looks down
    np.testing.assert_allclose(r[:, 1], [-1, 0, 0])   # image down = world -x (world +x is image up)
    with pytest.raises(ValueError):
        look_at_optical((0, 0, 1), (0, 0, 0), up=(0, 0, 1))
    with pytest.raises(ValueError):
        CameraConfig(fx=-1.0)
    with pytest.raises(ValueError):
        CameraConfig(znear=1.0, zfar=0.5)
    assert math.isclose(CameraConfig().principal_point[0], 319.5)


def test_single_pass_render_matches_mujoco_renderer(world):
    """Our one-pass colour + depth readback gives what mujoco.Renderer's two passes give."""
    import mujoco

    frame = world.render()
    renderer = mujoco.Renderer(world.model, height=480, width=640)
    try:
        renderer.update_scene(world.data, camera="rgbd")
        color = renderer.render()
        renderer.enable_depth_rendering()
        depth = renderer.render()
    finally:
        renderer.close()
    np.testing.assert_array_equal(frame.color, color)
    reference_mm = np.rint(depth * 1000.0)
    assert np.max(np.abs(frame.depth_mm - reference_mm)) <= 1.0
    assert np.mean(frame.depth_mm == reference_mm) > 0.999
