"""The MoG baseline's region-of-interest model (after Pinto & Gupta 2016).

Pinto & Gupta find regions of interest with a mixture-of-Gaussians background subtractor against the empty
table and sample grasps only inside them. Here OpenCV's MOG2 (a per-pixel Gaussian mixture) learns the table
from a few heightmaps of random scenes (objects move between scenes, so every pixel mostly shows table) and is
then frozen; a heightmap's foreground mask, cleaned by a morphological opening and grown a little so the
objects' edges stay in, is where the MoG method explores. The model sees colour and height: the image given
to MOG2 is the colour heightmap with its blue channel replaced by the scaled depth, so a grey object still
stands out by its height.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RoiConfig:
    """MOG2 and mask clean-up parameters."""

    var_threshold: float = 16.0  # MOG2 squared Mahalanobis distance for "foreground" (OpenCV default)
    depth_scale: float = 2000.0  # grey levels per metre of height in the model's input (0.1 m -> 200)
    open_px: int = 1  # opening radius (removes single-pixel speckle)
    grow_px: int = 1  # dilation radius (keeps the objects' edges inside the region of interest)

    def __post_init__(self) -> None:
        if not self.var_threshold > 0 or not self.depth_scale > 0 or self.open_px < 0 or self.grow_px < 0:
            raise ValueError(f"bad RoiConfig {self}: thresholds and scales must be > 0, radii >= 0")


def _disc(radius: int) -> np.ndarray | None:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)) if radius > 0 else None


class MogRegionOfInterest:
    """A frozen MOG2 background model of the empty table; `mask(color, depth)` gives the regions of interest."""

    def __init__(self, config: RoiConfig = RoiConfig()):
        self.config = config
        self._subtractor = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=config.var_threshold,
                                                              detectShadows=False)
        self.frames_seen = 0
        self._shape: tuple[int, int] | None = None

    def _model_input(self, color_hm: np.ndarray, depth_hm: np.ndarray) -> np.ndarray:
        color_hm, depth_hm = np.asarray(color_hm), np.asarray(depth_hm)
        if color_hm.dtype != np.uint8 or color_hm.ndim != 3 or color_hm.shape[2] != 3 \
                or depth_hm.shape != color_hm.shape[:2]:
            raise ValueError(f"need a uint8 (H, W, 3) colour and an (H, W) depth heightmap, got "
                             f"{color_hm.dtype} {color_hm.shape} and {depth_hm.shape}")
        if self._shape is not None and depth_hm.shape != self._shape:
            raise ValueError(f"the background model was learnt on {self._shape} heightmaps, got {depth_hm.shape}")
        image = color_hm.copy()
        image[..., 2] = np.clip(depth_hm * self.config.depth_scale, 0, 255).astype(np.uint8)
        return image

    def fit(self, heightmaps) -> "MogRegionOfInterest":
        """Learn the background from (colour, depth) heightmaps of scenes whose objects differ between frames."""
        count = 0
        for color_hm, depth_hm in heightmaps:
            image = self._model_input(color_hm, depth_hm)
            self._shape = depth_hm.shape
            self._subtractor.apply(image, learningRate=-1)  # -1: OpenCV's automatic rate (1 / frames so far)
            count += 1
        if count == 0:
            raise ValueError("no heightmaps to learn the background from")
        self.frames_seen += count
        return self

    def mask(self, color_hm: np.ndarray, depth_hm: np.ndarray) -> np.ndarray:
        """bool (H, W): True inside a region of interest. The model is not updated (learning rate 0)."""
        if self.frames_seen == 0:
            raise ValueError("the background model has not been fitted: call fit() first")
        foreground = self._subtractor.apply(self._model_input(color_hm, depth_hm), learningRate=0) > 0
        mask = foreground.astype(np.uint8)
        if (k := _disc(self.config.open_px)) is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
        if (k := _disc(self.config.grow_px)) is not None:
            mask = cv2.dilate(mask, k)
        return mask.astype(bool)


def fit_from_world(world, num_frames: int = 12) -> MogRegionOfInterest:
    """A region-of-interest model learnt from `num_frames` fresh random scenes of `world` (which is left reset).

    The scenes use the world's own random stream; call this before the learning run starts.
    """
    if num_frames < 2:
        raise ValueError(f"need at least 2 background frames, got {num_frames}")
    frames = []
    for _ in range(num_frames):
        world.reset()
        frames.append(world.heightmap())
    model = MogRegionOfInterest().fit(frames)
    world.reset()
    return model
