import math

import numpy as np
import pytest

from grasp_core.labels import affordance_label, estimate_sigma


def gaussian(u, v, u_i, v_i, s):
    return math.exp(-((v - v_i) ** 2 + (u - u_i) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)


def test_label_matches_the_formula_at_hand_picked_pixels():
    points, sigmas = [[10.0, 20.0], [40.5, 12.0]], [3.0, 6.0]
    label = affordance_label((32, 48), points, sigmas)
    assert label.shape == (32, 48) and label.dtype == np.float32
    total = lambda u, v: gaussian(u, v, 10, 20, 3) + gaussian(u, v, 40.5, 12, 6)   # noqa: E731
    peak = total(10, 20)          # the narrow Gaussian dominates: its peak is the map's maximum
    assert peak > total(40, 12)
    for u, v in [(10, 20), (12, 21), (40, 12), (41, 12), (0, 0), (25, 16), (47, 31)]:
        assert label[v, u] == pytest.approx(total(u, v) / peak, rel=1e-5, abs=1e-7), (u, v)
    assert label.max() == pytest.approx(1.0) and label.min() >= 0


def test_label_peaks_at_each_key_point():
    points = [[8, 8], [30, 10], [20, 28]]
    label = affordance_label((36, 40), points, [2.0, 2.5, 3.0])
    for u, v in points:
        window = label[v - 3:v + 4, u - 3:u + 4]
        assert np.unravel_index(np.argmax(window), window.shape) == (3, 3)
    assert label[8, 8] == pytest.approx(1.0)      # the smallest sigma has the highest peak


def test_label_without_points_is_zero_and_bad_points_raise():
    assert not affordance_label((5, 6), [], []).any()
    with pytest.raises(ValueError, match="outside"):
        affordance_label((10, 10), [[10, 2]], [1.0])
    with pytest.raises(ValueError, match="sigma"):
        affordance_label((10, 10), [[2, 2]], [0.0])
    with pytest.raises(ValueError, match="2 key points but 1 sigmas"):
        affordance_label((10, 10), [[2, 2], [3, 3]], [1.0])
    with pytest.raises(ValueError, match=r"\[\[u, v\]"):
        affordance_label((10, 10), [[2, 2, 1]], [1.0])


def scene_with_disc_and_box():
    depth = np.zeros((100, 120), np.float32)
    rows, cols = np.mgrid[0:100, 0:120]
    disc = (cols - 30) ** 2 + (rows - 40) ** 2 <= 12 ** 2      # radius 12 px
    depth[disc] = 0.04
    depth[55:75, 70:110] = 0.03                               # 20 x 40 px box: half short side 10
    depth[10, 100] = 0.001                                    # noise below the threshold
    return depth


@pytest.mark.parametrize("point, expected", [((30, 40), 12.0), ((34, 37), 12.0), ((25, 45), 12.0),
                                             ((90, 65), 10.0), ((80, 60), 10.0), ((104, 70), 10.0)])
def test_sigma_is_the_distance_from_inside_to_the_edge_even_off_centre(point, expected):
    assert estimate_sigma(scene_with_disc_and_box(), point) == pytest.approx(expected, abs=0.5)


def test_sigma_on_empty_table_raises():
    depth = scene_with_disc_and_box()
    with pytest.raises(ValueError, match="empty table"):
        estimate_sigma(depth, (5, 5))
    with pytest.raises(ValueError, match="empty table"):
        estimate_sigma(depth, (100, 10))
    with pytest.raises(ValueError, match="outside"):
        estimate_sigma(depth, (120, 10))
