"""The action space: jaw-symmetric Q and the object-footprint mask every loop chooses grasps within."""
import numpy as np
import pytest

from grasp_core.action_space import ActionSpaceConfig, choose_grasp, grasp_mask, symmetric_q

RES = 0.004  # m per pixel
MASK = ActionSpaceConfig(object_mask=True, min_height_m=0.01, edge_margin_m=4 * RES)


def scene():
    """A 20 x 20 px box (4 cm tall) and a 3 px wide bar, on a 64 x 64 heightmap."""
    depth = np.zeros((64, 64), np.float32)
    depth[10:30, 10:30] = 0.04
    depth[45:48, 5:60] = 0.03
    return depth


def test_symmetric_q_averages_a_rotation_with_its_opposite():
    q = np.random.default_rng(0).random((16, 5, 7)).astype(np.float32)
    s = symmetric_q(q)
    np.testing.assert_allclose(s[3], (q[3] + q[11]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(s[:8], s[8:])
    with pytest.raises(ValueError, match="even R"):
        symmetric_q(q[:15])


def test_the_mask_keeps_pixels_deep_inside_a_footprint():
    depth = scene()
    mask = grasp_mask(depth, MASK, RES)
    # 4 px inside the box's border: rows and columns 13..26; the 3 px bar is not that deep anywhere
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (13, 26, 13, 26)
    assert grasp_mask(depth, ActionSpaceConfig(), RES) is None  # the seed's: anywhere
    assert grasp_mask(np.zeros((64, 64)), MASK, RES) is None  # nothing in view


def test_where_no_pixel_is_that_deep_the_deepest_are_kept():
    depth = scene()
    depth[10:30, 10:30] = 0.0  # only the bar is left
    rows, cols = np.nonzero(grasp_mask(depth, MASK, RES))
    assert set(rows) == {46}  # its centre line
    assert grasp_mask(depth, ActionSpaceConfig(object_mask=True, min_height_m=0.035), RES) is None


def test_failed_grasps_that_cover_the_deep_pixels_release_the_rest_of_the_footprint():
    depth = scene()
    deep = grasp_mask(depth, MASK, RES)
    excluded = np.broadcast_to(deep, (4, 64, 64)).copy()
    assert (grasp_mask(depth, MASK, RES, excluded) == (depth > 0.01)).all()
    excluded = np.broadcast_to(depth > 0.01, (4, 64, 64)).copy()
    assert grasp_mask(depth, MASK, RES, excluded) is None
    excluded[1:] = False  # one rotation left everywhere: the deep pixels stay allowed
    assert (grasp_mask(depth, MASK, RES, excluded) == deep).all()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="edge_margin_m"):
        ActionSpaceConfig(edge_margin_m=-0.01)
    with pytest.raises(ValueError, match="min_height_m"):
        ActionSpaceConfig(min_height_m=float("nan"))


def test_choose_grasp_takes_the_best_allowed_grasp_by_the_symmetric_q():
    depth = scene()
    q = np.zeros((4, 64, 64), np.float32)
    q[0, 2, 2] = 9.0  # on the bare table: never chosen with the mask
    q[1, 20, 20], q[3, 20, 20] = 1.0, 0.0  # mean 0.5
    q[0, 15, 15], q[2, 15, 15] = 0.8, 0.8  # mean 0.8: the best allowed jaw-symmetric grasp
    rng = np.random.default_rng(0)
    seed = choose_grasp(q, depth, RES, ActionSpaceConfig(), 0.0, rng)
    assert (seed.rotation, seed.u, seed.v) == (0, 2, 2)
    ours = choose_grasp(q, depth, RES, ActionSpaceConfig(object_mask=True, edge_margin_m=4 * RES,
                                                         symmetric_q=True), 0.0, rng)
    assert (ours.rotation % 2, ours.u, ours.v, ours.q) == (0, 15, 15, pytest.approx(0.8))
    for _ in range(20):  # exploring grasps stay inside the mask too
        a = choose_grasp(q, depth, RES, MASK, 1.0, rng, mode="uniform")
        assert a.explored and 13 <= a.u <= 26 and 13 <= a.v <= 26


def test_a_margin_rounded_to_float32_keeps_the_same_pixels():
    """A ProposeGrasp request carries the margin as float32 (0.016 -> 0.016000001 m): 4.0000002 px at 4 mm left out
    every pixel exactly 4 px inside, so the service chose otherwise than the preset (issue 23)."""
    depth = scene()
    exact = grasp_mask(depth, ActionSpaceConfig(object_mask=True, edge_margin_m=0.016), RES)
    rounded = grasp_mask(depth, ActionSpaceConfig(object_mask=True, edge_margin_m=float(np.float32(0.016))), RES)
    assert exact[13, 20] and not exact[12, 20]  # 4 px inside the box (row 10 is 1 px inside): kept
    np.testing.assert_array_equal(rounded, exact)
