"""sensor_msgs/Image and grasp_interfaces/Heightmap <-> numpy.

Hand-written because cv_bridge is not installable beside the PyPI ROS wheels (and only needs these few
encodings here). Every function checks encoding, size and step and raises ValueError with the reason, so a
node can log and drop a bad message instead of crashing.
"""
from __future__ import annotations

import time

import numpy as np
from grasp_core.attempts import AttemptRecord
from grasp_core.grasp_pose import rotation_angle
from grasp_core.workspace import WorkspaceLimits, exceeds_pixel_cap
from grasp_interfaces.msg import Heightmap
from sensor_msgs.msg import Image

# encoding -> (numpy dtype, channels)
ENCODINGS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "mono8": (np.uint8, 1),
    "16UC1": (np.uint16, 1),
    "mono16": (np.uint16, 1),
    "32FC1": (np.float32, 1),
}


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (a header's `stamp`) -> integer nanoseconds, for exact ordering and pairing."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_numpy(msg: Image, expected_encodings: tuple[str, ...] | None = None) -> np.ndarray:
    """Image -> (H, W) or (H, W, C) array (a copy). rgb8 stays RGB; bgr8 is converted to RGB."""
    if expected_encodings is not None and msg.encoding not in expected_encodings:
        raise ValueError(f"image encoding '{msg.encoding}' is not one of {list(expected_encodings)}")
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding '{msg.encoding}' (supported: {sorted(ENCODINGS)})")
    dtype, channels = ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = msg.width * channels * itemsize
    if msg.height == 0 or msg.width == 0:
        raise ValueError("image is empty (0 x 0)")
    if msg.step < row_bytes:
        raise ValueError(f"image step {msg.step} is smaller than width*channels*itemsize = {row_bytes}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size != msg.step * msg.height:
        raise ValueError(f"image data has {data.size} bytes, expected step*height = {msg.step * msg.height}")
    rows = data.reshape(msg.height, msg.step)[:, :row_bytes]
    arr = rows.copy().view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")).astype(dtype)
    arr = arr.reshape(msg.height, msg.width, channels) if channels > 1 else arr.reshape(msg.height, msg.width)
    if msg.encoding == "bgr8":
        arr = arr[..., ::-1].copy()
    return arr


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """(H, W) or (H, W, C) array -> Image with the given encoding (rgb8 expects RGB data)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding '{encoding}' (supported: {sorted(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    if array.dtype != dtype:
        raise ValueError(f"encoding {encoding} needs dtype {np.dtype(dtype).name}, got {array.dtype}")
    expected_ndim = 3 if channels > 1 else 2
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f"encoding {encoding} needs shape (H, W{', %d' % channels if channels > 1 else ''}), "
                         f"got {array.shape}")
    if encoding == "bgr8":
        array = array[..., ::-1]
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels * np.dtype(dtype).itemsize
    msg.data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return msg


def heightmap_to_msg(color_hm: np.ndarray, depth_hm: np.ndarray, workspace: WorkspaceLimits,
                     header=None) -> Heightmap:
    """Colour (H, W, 3) uint8 + depth (H, W) float32 heightmaps -> grasp_interfaces/Heightmap."""
    if color_hm.shape[:2] != depth_hm.shape:
        raise ValueError(f"colour heightmap {color_hm.shape[:2]} and depth heightmap {depth_hm.shape} differ in size")
    if tuple(depth_hm.shape) != workspace.shape:
        raise ValueError(f"heightmap size {depth_hm.shape} does not match the workspace's {workspace.shape}")
    msg = Heightmap()
    if header is not None:
        msg.header = header
    msg.color = numpy_to_image(np.asarray(color_hm, dtype=np.uint8), "rgb8", msg.header)
    msg.depth = numpy_to_image(np.asarray(depth_hm, dtype=np.float32), "32FC1", msg.header)
    msg.resolution = float(workspace.resolution)
    msg.x_min, msg.x_max = float(workspace.x_min), float(workspace.x_max)
    msg.y_min, msg.y_max = float(workspace.y_min), float(workspace.y_max)
    msg.z_min, msg.z_max = float(workspace.z_min), float(workspace.z_max)
    return msg


# Depth may exceed z_max - z_min by float32 rounding of (z - z_min) only.
DEPTH_TOLERANCE = 1e-6


def check_depth_range(depth: np.ndarray, workspace: WorkspaceLimits) -> None:
    """Depth heightmaps hold metres above z_min, up to z_max (docs/design.md); anything else is a bad message."""
    top = workspace.z_max - workspace.z_min
    low, high = float(depth.min()), float(depth.max())
    if low < -DEPTH_TOLERANCE or high > top + DEPTH_TOLERANCE:
        raise ValueError(f"heightmap depth must lie in [0, z_max - z_min] = [0, {top:g}] m (heights above z_min), "
                         f"got values from {low:g} to {high:g} m")


def check_heightmap_size(msg: Heightmap, max_pixels: int) -> None:
    """Refuse, before decoding anything, a heightmap larger than `max_pixels` (its images and its bounds), by
    grasp_core.workspace.exceeds_pixel_cap: more pixels, or a long thin one whose diagonal is longer than that of a
    square of max_pixels (it is rotated inside a square of its diagonal)."""
    sizes = [("depth image", msg.depth.height, msg.depth.width), ("colour image", msg.color.height, msg.color.width)]
    try:
        height, width = WorkspaceLimits(msg.x_min, msg.x_max, msg.y_min, msg.y_max, msg.z_min, msg.z_max,
                                        msg.resolution).shape
        sizes.append(("bounds / resolution", height, width))
    except (ValueError, OverflowError):
        pass  # msg_to_heightmap says what is wrong with the bounds
    for what, h, w in sizes:
        h, w = int(h), int(w)
        if exceeds_pixel_cap(h, w, max_pixels):
            raise ValueError(f"heightmap too large: its {what} is {w}x{h} pixels, the limit is {max_pixels} "
                             f"pixels (parameter max_heightmap_pixels; a {int(max_pixels ** 0.5)}x"
                             f"{int(max_pixels ** 0.5)} square): use a coarser resolution or a smaller workspace")


def is_empty_heightmap(msg: Heightmap) -> bool:
    """True for a default (unset) Heightmap, the 'use the latest one' value of ProposeGrasp requests."""
    return len(msg.depth.data) == 0 and len(msg.color.data) == 0


def msg_to_heightmap(msg: Heightmap) -> tuple[np.ndarray, np.ndarray, WorkspaceLimits]:
    """grasp_interfaces/Heightmap -> (colour (H, W, 3) uint8, depth (H, W) float32, workspace)."""
    workspace = WorkspaceLimits(msg.x_min, msg.x_max, msg.y_min, msg.y_max, msg.z_min, msg.z_max, msg.resolution)
    color = image_to_numpy(msg.color, ("rgb8",))
    depth = image_to_numpy(msg.depth, ("32FC1",))
    if color.shape[:2] != depth.shape:
        raise ValueError(f"heightmap colour {color.shape[:2]} and depth {depth.shape} differ in size")
    if depth.shape != workspace.shape:
        raise ValueError(f"heightmap size {depth.shape} does not match its bounds and resolution {workspace.shape}")
    if not np.all(np.isfinite(depth)):
        raise ValueError("heightmap depth contains NaN or inf")
    check_depth_range(depth, workspace)
    return color, depth, workspace


def attempt_record(experience, **known) -> AttemptRecord:
    """The attempt log's record (grasp_core.attempts) of a grasp_interfaces/GraspExperience. `known`: fields the
    caller knows beyond the message (the executor: the backend's message, objects left, the reset); the learner's
    fields (TD target, loss, ...) stay None."""
    pos = experience.pose.pose.position
    fields = dict(
        step=int(experience.attempt), success=int(experience.reward > 0.5), reward=float(experience.reward),
        explored=bool(experience.explored), epsilon=float(experience.epsilon),
        rotation=int(experience.rotation_index), u=int(experience.pixel_x), v=int(experience.pixel_y),
        angle=rotation_angle(int(experience.rotation_index), int(experience.num_rotations)),
        predicted_q=float(experience.predicted_q), target=None, loss=None, grad_norm=None, replayed=None,
        diverged=None, failure_reason=int(experience.failure_reason), grasped_object="", objects_remaining=-1,
        scene_reset=False, reset_why="", excluded=None, on_object=None, keypoint_mm=None,
        model_version=int(experience.model_version), roi_pixels=None, seconds=None, source=experience.source,
        experience_id=experience.id, wall_time=time.time(), x=float(pos.x), y=float(pos.y), z=float(pos.z),
        terminal=bool(experience.terminal))
    fields.update(known)
    return AttemptRecord(**fields)
