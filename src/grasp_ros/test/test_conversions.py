import numpy as np
import pytest

pytest.importorskip("rclpy")
from grasp_core.workspace import VPG_SIM_WORKSPACE, WorkspaceLimits  # noqa: E402
from grasp_interfaces.msg import Heightmap  # noqa: E402
from grasp_ros.conversions import (heightmap_to_msg, image_to_numpy, is_empty_heightmap,  # noqa: E402
                                   msg_to_heightmap, numpy_to_image)


@pytest.mark.parametrize("encoding,dtype,shape", [("rgb8", np.uint8, (4, 5, 3)), ("16UC1", np.uint16, (4, 5)),
                                                  ("32FC1", np.float32, (4, 5)), ("mono8", np.uint8, (4, 5))])
def test_image_round_trip(encoding, dtype, shape):
    rng = np.random.default_rng(0)
    arr = (rng.uniform(0, 200, size=shape)).astype(dtype)
    back = image_to_numpy(numpy_to_image(arr, encoding))
    assert back.dtype == dtype and np.array_equal(back, arr)


def test_bgr8_becomes_rgb_and_padded_rows_are_handled():
    msg = numpy_to_image(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8), "bgr8")
    assert list(msg.data) == [3, 2, 1, 6, 5, 4]
    assert image_to_numpy(msg).tolist() == [[[1, 2, 3], [4, 5, 6]]]
    msg = numpy_to_image(np.array([[1, 2], [3, 4]], np.uint16), "16UC1")
    # The same image with 2 bytes of padding per row.
    padded = bytes(msg.data[0:4]) + b"\0\0" + bytes(msg.data[4:8]) + b"\0\0"
    msg.step, msg.data = 6, padded
    assert image_to_numpy(msg).tolist() == [[1, 2], [3, 4]]


def test_big_endian_depth_is_read_correctly():
    msg = numpy_to_image(np.array([[1000, 2]], np.uint16), "16UC1")
    msg.is_bigendian = 1
    msg.data = np.array([[1000, 2]], dtype=">u2").tobytes()
    assert image_to_numpy(msg).tolist() == [[1000, 2]]


def test_bad_images_raise_clear_errors():
    msg = numpy_to_image(np.zeros((2, 2), np.uint16), "16UC1")
    with pytest.raises(ValueError, match="encoding '16UC1' is not one of"):
        image_to_numpy(msg, ("rgb8",))
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ValueError, match="bytes"):
        image_to_numpy(msg)
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="unsupported"):
        image_to_numpy(msg)
    with pytest.raises(ValueError, match="dtype"):
        numpy_to_image(np.zeros((2, 2), np.float64), "32FC1")


def test_heightmap_round_trip_and_checks():
    ws = VPG_SIM_WORKSPACE.with_resolution(0.008)
    h, w = ws.shape
    rng = np.random.default_rng(1)
    color = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0, 0.1, (h, w)).astype(np.float32)
    msg = heightmap_to_msg(color, depth, ws)
    c2, d2, ws2 = msg_to_heightmap(msg)
    assert np.array_equal(c2, color) and np.array_equal(d2, depth) and ws2 == ws
    assert is_empty_heightmap(Heightmap()) and not is_empty_heightmap(msg)
    with pytest.raises(ValueError, match="does not match"):
        heightmap_to_msg(color, depth, WorkspaceLimits(0, 1, 0, 1, 0, 1, 0.1))
    depth[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        msg_to_heightmap(heightmap_to_msg(color, depth, ws))


def test_depth_must_be_height_above_z_min_up_to_z_max():
    """Issue 11, defect 5: depth -5 m or 1e30 became a grasp at z = -5 or 1e30."""
    ws = VPG_SIM_WORKSPACE.with_resolution(0.008)  # z in [-0.0001, 0.4]
    color = np.zeros(ws.shape + (3,), np.uint8)
    top = ws.z_max - ws.z_min
    for value in (-5.0, 1e30, -1e-4, top + 1e-4):
        depth = np.zeros(ws.shape, np.float32)
        depth[3, 4] = value
        with pytest.raises(ValueError, match=r"depth must lie in \[0, z_max - z_min\]"):
            msg_to_heightmap(heightmap_to_msg(color, depth, ws))
    for value in (0.0, top, np.float32(top) + np.float32(1e-7)):  # the ends of the range, float32 rounding
        depth = np.full(ws.shape, value, np.float32)
        msg_to_heightmap(heightmap_to_msg(color, depth, ws))


def test_heightmap_size_is_checked_from_the_message_alone():
    from grasp_ros.conversions import check_heightmap_size

    msg = Heightmap()
    msg.depth.height = msg.depth.width = msg.color.height = msg.color.width = 512
    msg.x_min, msg.x_max, msg.y_min, msg.y_max, msg.z_min, msg.z_max = 0.0, 0.448, 0.0, 0.448, 0.0, 0.3
    msg.resolution = 0.448 / 512
    check_heightmap_size(msg, 512 * 512)  # no image bytes needed: nothing is decoded
    with pytest.raises(ValueError, match="heightmap too large: its depth image is 512x512"):
        check_heightmap_size(msg, 511 * 511)
    msg.depth.height = msg.color.height = 8  # 8 x 512 images, but bounds that say 512 x 512
    with pytest.raises(ValueError, match="its bounds / resolution is 512x512"):
        check_heightmap_size(msg, 400 * 400)  # the images pass (8 x 512 fits), the bounds do not
    msg.resolution = 5e-324  # absurd bounds: left for msg_to_heightmap to explain
    check_heightmap_size(msg, 512 * 512)
