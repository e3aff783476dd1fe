"""The D435-like depth model (grasp_core.sim.depth_noise): its statistics match the model, holes fall where a stereo
camera has them, frames are reproducible; and heightmaps of noisy frames stay true to the scene."""
import math
from dataclasses import replace

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt
import pytest

from grasp_core.episode import EpisodeConfig, scene_changed
from grasp_core.heightmap import depth_image_from_16uc1, make_heightmap, project_heightmap
from grasp_core.sim import CameraConfig, GraspWorld, SimConfig
from grasp_core.sim.camera import RgbdCamera
from grasp_core.sim.depth_noise import (DepthNoiseConfig, correlated_field, depth_edges, noisy_depth_mm,
                                        stereo_shadow)

H, W, FX = 480, 640, 615.0
QUANTISATION_VAR = 1e-6 / 12  # variance of rounding to 1 mm, m^2
NO_HOLES = dict(shadows=False, edge_hole_probability=0.0, random_hole_fraction=0.0)


def plane(z):
    return np.full((H, W), z)


def error_m(depth_mm, clean):
    return depth_mm.astype(np.float64) / 1000.0 - clean


def test_per_pixel_noise_follows_intels_rms_formula():
    config = DepthNoiseConfig(correlated_subpixel=0.0, **NO_HOLES)
    # Intel's formula at the simulated camera's working distance: z^2 * subpixel / (focal_px * baseline).
    assert math.isclose(config.pixel_sigma(0.665), 0.665 ** 2 * 0.08 / (447.0 * 0.05))
    assert 0.0014 < config.pixel_sigma(0.665) < 0.0017   # about 1.5 mm
    for z in (0.5, 0.665, 1.0):
        depth_mm = noisy_depth_mm(plane(z), np.random.default_rng(1), config, FX)
        error = error_m(depth_mm, z)
        expected = math.sqrt(config.pixel_sigma(z) ** 2 + QUANTISATION_VAR)
        assert abs(error.std() / expected - 1) < 0.03, (z, error.std(), expected)
        assert abs(error.mean()) < 0.05 * expected
        # Uncorrelated between neighbours.
        assert abs(np.corrcoef(error[:, :-1].ravel(), error[:, 1:].ravel())[0, 1]) < 0.02
    assert config.pixel_sigma(1.0) / config.pixel_sigma(0.5) == pytest.approx(4.0)


def test_correlated_noise_is_smooth_and_has_the_configured_scale():
    config = DepthNoiseConfig(subpixel=0.0, **NO_HOLES)
    field = correlated_field(np.random.default_rng(2), (H, W), config)
    assert field.shape == (H, W)
    assert math.isclose(float(np.sqrt(np.mean(field ** 2))), config.correlated_subpixel, rel_tol=1e-9)
    assert abs(field.mean()) < 1e-12
    z = 0.665
    error = error_m(noisy_depth_mm(plane(z), np.random.default_rng(3), config, FX), z)
    expected = config.correlated_sigma(z)
    assert 0.0015 < expected < 0.003                      # a few mm at the working distance
    assert abs(error.std() / math.sqrt(expected ** 2 + QUANTISATION_VAR) - 1) < 0.05
    # Smooth: the error 5 px away is nearly the same, while far apart it is not.
    clean_field = config.metres_per_disparity_px(z) * field
    assert np.corrcoef(clean_field[:, :-5].ravel(), clean_field[:, 5:].ravel())[0, 1] > 0.95
    assert np.corrcoef(clean_field[:, :-320].ravel(), clean_field[:, 320:].ravel())[0, 1] < 0.5
    # Given a fixed field (the camera's fixed pattern), the correlated part is the same in every frame.
    a = noisy_depth_mm(plane(z), np.random.default_rng(4), DepthNoiseConfig(subpixel=0.0, **NO_HOLES), FX, field)
    b = noisy_depth_mm(plane(z), np.random.default_rng(5), DepthNoiseConfig(subpixel=0.0, **NO_HOLES), FX, field)
    np.testing.assert_array_equal(a, b)


def test_random_holes_cover_the_configured_fraction():
    for fraction in (0.002, 0.02):
        config = DepthNoiseConfig(shadows=False, edge_hole_probability=0.0, random_hole_fraction=fraction)
        holes = np.mean([np.mean(noisy_depth_mm(plane(0.665), np.random.default_rng(s), config, FX) == 0)
                         for s in range(5)])
        assert 0.75 * fraction < holes < 1.25 * fraction, (fraction, holes)
    config = DepthNoiseConfig(shadows=False, edge_hole_probability=0.0, random_hole_fraction=0.0)
    assert not np.any(noisy_depth_mm(plane(0.665), np.random.default_rng(0), config, FX) == 0)


def tall_step(near=0.565, far=0.665, cols=(300, 400)):
    depth = plane(far)
    depth[100:380, cols[0]:cols[1]] = near      # a 10 cm tall block on the table
    return depth


def test_stereo_shadow_falls_on_the_left_of_a_tall_edge():
    near, far = 0.565, 0.665
    depth = tall_step(near, far)
    config = DepthNoiseConfig(edge_hole_probability=0.0, random_hole_fraction=0.0)
    width = FX * config.baseline * (1 / near - 1 / far)  # the disparity step, px of the aligned image
    assert 7 < width < 9
    depth_mm = noisy_depth_mm(depth, np.random.default_rng(0), config, FX)
    holes = depth_mm == 0
    rows = slice(100, 380)
    shadow_cols = np.nonzero(holes[rows].all(axis=0))[0]
    # The shadow is a band on the table just left of the block, as wide as the disparity step.
    assert shadow_cols.max() == 299 and abs(len(shadow_cols) - width) <= 1, shadow_cols
    assert not holes[rows, 400:].any() and not holes[rows, 300:400].any()  # nothing on the right or on top
    assert not holes[:100].any() and not holes[380:].any()
    assert np.array_equal(holes, stereo_shadow(depth, FX, config.baseline))
    # Without shadows, no holes at all.
    assert not np.any(noisy_depth_mm(depth, np.random.default_rng(0), replace(config, shadows=False), FX) == 0)


def test_holes_at_depth_edges():
    depth = tall_step()
    edges = depth_edges(depth, 0.01, 1)
    assert edges[200, 299] and edges[200, 300] and edges[200, 399] and edges[200, 400]
    assert not edges[200, 298] and not edges[200, 350] and not edges[50].any()
    assert depth_edges(depth, 0.01, 2)[200, 298] and not depth_edges(depth, 0.2, 1).any()
    config = DepthNoiseConfig(shadows=False, random_hole_fraction=0.0, edge_hole_probability=0.5)
    holes = np.mean([noisy_depth_mm(depth, np.random.default_rng(s), config, FX) == 0 for s in range(8)], axis=0)
    assert 0.35 < holes[edges].mean() < 0.65 and not holes[~edges].any()


def test_quantised_to_millimetres_and_exact_without_noise():
    depth = tall_step() + np.linspace(0, 0.0123, W)  # off the millimetre grid
    depth[0, :5] = [0.0, np.nan, np.inf, -1.0, 0.3]
    silent = DepthNoiseConfig(subpixel=0.0, correlated_subpixel=0.0, **NO_HOLES)
    depth_mm = noisy_depth_mm(depth, np.random.default_rng(0), silent, FX)
    assert depth_mm.dtype == np.uint16
    expected = np.rint(np.nan_to_num(depth, posinf=0.0) * 1000).clip(0)
    np.testing.assert_array_equal(depth_mm, expected.astype(np.uint16))
    assert list(depth_mm[0, :5]) == [0, 0, 0, 0, 300]   # no return stays 0


def test_deterministic_per_generator_seed():
    depth = tall_step()
    config = DepthNoiseConfig()
    a = noisy_depth_mm(depth, np.random.default_rng(7), config, FX)
    b = noisy_depth_mm(depth, np.random.default_rng(7), config, FX)
    c = noisy_depth_mm(depth, np.random.default_rng(8), config, FX)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3


def test_config_and_input_validation():
    for bad in (dict(baseline=0.0), dict(focal_px=-1.0), dict(subpixel=-0.1), dict(subpixel=float("nan")),
                dict(edge_hole_probability=1.5), dict(random_hole_fraction=0.9), dict(correlated_cell_px=1),
                dict(edge_width_px=1.5), dict(random_hole_radius_px=0), dict(shadows=1), dict(edge_jump=True)):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"DepthNoiseConfig.{name}"):
            DepthNoiseConfig(**bad)
    with pytest.raises(ValueError, match="depth_noise"):
        CameraConfig(depth_noise="on")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="2-D float"):
        noisy_depth_mm(np.zeros((4, 4), np.uint16), rng, DepthNoiseConfig(), FX)
    with pytest.raises(ValueError, match="focal length"):
        noisy_depth_mm(plane(0.5), rng, DepthNoiseConfig(), 0.0)
    with pytest.raises(ValueError, match="correlated field shape"):
        noisy_depth_mm(plane(0.5), rng, DepthNoiseConfig(), FX, np.zeros((3, 3)))


# ---------------------------------------------------------------------------------------------- in the simulation
@pytest.fixture(scope="module")
def scene():
    """A settled 10-object scene; its camera is the default (noisy) one."""
    world = GraspWorld(SimConfig(num_objects=10, seed=4))
    yield world
    world.close()


def heightmap(frame, workspace):
    return make_heightmap(frame.color, depth_image_from_16uc1(frame.depth_mm), frame.intrinsics.K, frame.pose,
                          workspace)[1]


def test_the_simulated_camera_is_noisy_by_default_and_exact_without(scene):
    assert isinstance(CameraConfig().depth_noise, DepthNoiseConfig)
    assert CameraConfig().exact_depth().depth_noise is None
    with RgbdCamera(scene.model, scene.config.camera.exact_depth()) as exact:
        clean = exact.render(scene.data)
        np.testing.assert_array_equal(exact.render(scene.data).depth_mm, clean.depth_mm)  # exact: always the same
    assert np.all(clean.depth_mm > 0)
    noisy = [scene._camera.render(scene.data) for _ in range(2)]
    model = DepthNoiseConfig()
    z = clean.depth_mm.astype(float) / 1000.0
    # the model's error (per-pixel and correlated parts) over this scene's depths, plus two 1 mm roundings
    expected_mm = 1000.0 * np.sqrt(np.mean(model.pixel_sigma(z) ** 2 + model.correlated_sigma(z) ** 2)
                                   + 2 * (0.001 ** 2) / 12)
    for frame in noisy:
        holes = frame.depth_mm == 0
        assert 0.002 < holes.mean() < 0.05
        error = frame.depth_mm[~holes].astype(float) - clean.depth_mm[~holes]
        assert np.std(error) == pytest.approx(expected_mm, rel=0.1)
        assert np.percentile(np.abs(error), 99) < 3 * expected_mm  # Gaussian: ~2.6 sigma
    assert np.mean(noisy[0].depth_mm != noisy[1].depth_mm) > 0.3  # every render draws new noise
    np.testing.assert_array_equal(noisy[0].color, clean.color)


def test_same_world_seed_gives_bit_identical_frames():
    frames = []
    for _ in range(2):
        with GraspWorld(SimConfig(num_objects=3, seed=11)) as world:
            frames.append(world.render().depth_mm)
    np.testing.assert_array_equal(frames[0], frames[1])
    with GraspWorld(SimConfig(num_objects=3, seed=12)) as other:
        assert not np.array_equal(other.render().depth_mm, frames[0])
    with pytest.raises(ValueError, match="seed"):
        RgbdCamera(None, CameraConfig(), seed=-1)  # refused before the model is read


def test_noisy_heightmap_matches_the_exact_one(scene):
    ws = scene.workspace
    with RgbdCamera(scene.model, scene.config.camera.exact_depth()) as exact:
        clean_frame = exact.render(scene.data)
    _, exact_hm, observed = project_heightmap(clean_frame.color, depth_image_from_16uc1(clean_frame.depth_mm),
                                              clean_frame.intrinsics.K, clean_frame.pose, ws)
    noisy_hm = heightmap(scene._camera.render(scene.data), ws)
    objects = observed & (exact_hm > 0.01)
    # Object tops: cells at least 2 cells inside a footprint (edges move by a cell with noise).
    tops = cv2.erode(objects.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    table = observed & (exact_hm < 0.002)
    table = cv2.erode(table.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert tops.sum() > 2000 and table.sum() > 20000
    for cells, name in ((tops, "object tops"), (table, "table")):
        error = np.abs(noisy_hm[cells] - exact_hm[cells])
        assert error.mean() < 0.003 and np.percentile(error, 95) < 0.006, (name, error.mean())
    # No false gap inside a footprint: a hole is filled from its neighbours, never called table.
    assert not np.any(tops & (noisy_hm < 0.005))


def test_a_still_scene_does_not_count_as_changed(scene):
    ws = scene.workspace
    hms = [heightmap(scene._camera.render(scene.data), ws) for _ in range(3)]
    config = EpisodeConfig()
    assert not scene_changed(hms[0], hms[1], ws.resolution, config)
    assert not scene_changed(hms[1], hms[2], ws.resolution, config)
    gone = hms[1].copy()
    inside = distance_transform_edt(hms[1] > 0.01)  # a patch wholly on an object, whatever the scene
    v, u = np.unravel_index(int(np.argmax(inside)), inside.shape)
    gone[max(v - 6, 0):v + 6, max(u - 6, 0):u + 6] = 0.0   # a 2.4 cm object left
    assert scene_changed(hms[0], gone, ws.resolution, config)
