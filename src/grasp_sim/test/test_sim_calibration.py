"""config/*_sim_calibration.yaml is the simulated camera's real pose, so perception runs unchanged on the sim."""
from pathlib import Path

import numpy as np
import pytest
from grasp_core.heightmap import depth_image_from_16uc1, make_heightmap
from grasp_core.sim import CameraConfig, GraspWorld, SimConfig

from grasp_perception.calibration import load_calibration

CONFIG = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize("robot", ["ur5", "ur3"])
def test_sim_calibration_file_matches_the_world_camera(robot):
    calibration = load_calibration(CONFIG / f"{robot}_sim_calibration.yaml")
    assert calibration.base_frame == "world" and calibration.camera_frame == "camera_color_optical_frame"
    # exact depth: a 1e-6 pose difference moves noisy points across cell borders, and the fill spreads them
    with GraspWorld(SimConfig(robot=robot, num_objects=3, seed=2, camera=CameraConfig().exact_depth())) as world:
        frame = world.render()
        np.testing.assert_allclose(calibration.matrix(), frame.pose, atol=1e-6)
        # The heightmap made with the file's pose is the world's own, cell for cell.
        color, depth = make_heightmap(frame.color, depth_image_from_16uc1(frame.depth_mm), frame.intrinsics.K,
                                      calibration.matrix(), world.workspace)
        want_color, want_depth = world.heightmap()
        assert np.mean(np.abs(depth - want_depth) < 1e-4) > 0.999
        assert np.mean(np.all(color == want_color, axis=-1)) > 0.999
        assert np.count_nonzero(want_depth > 0.02) > 100  # there are objects to compare
