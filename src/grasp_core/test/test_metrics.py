import numpy as np
import pytest

from grasp_core.metrics import (acceleration_ratio, box_success, mean_ci95, stable_index, stable_success,
                                steps_to_reach, windowed_success)


def test_windowed_success_by_hand():
    s = [1, 0, 1, 1, 0, 0, 1]
    # window 3; "fixed" divides by 3 from the start, "so_far" by the attempts seen.
    np.testing.assert_allclose(windowed_success(s, 3), [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(windowed_success(s, 3, partial="so_far"), [1, 1 / 2, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(windowed_success([True, True], 100), [0.01, 0.02])
    assert windowed_success([], 5).shape == (0,)


def test_windowed_success_matches_a_plain_loop():
    rng = np.random.default_rng(3)
    s = rng.random(500) < 0.4
    g = windowed_success(s, 100)
    for t in (0, 50, 99, 100, 250, 499):
        assert g[t] == pytest.approx(s[max(0, t - 99):t + 1].sum() / 100)


def test_bad_outcomes_raise():
    with pytest.raises(ValueError, match="0/1"):
        windowed_success([0, 0.5, 1])
    with pytest.raises(ValueError, match="window"):
        windowed_success([0, 1], 0)
    with pytest.raises(ValueError, match="partial"):
        windowed_success([0, 1], 2, partial="ramp")


def test_box_success_is_eq6_y():
    s = [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(box_success(s, 5), [2 / 5, 4 / 5])   # the last, incomplete box is dropped


def test_stable_success_by_hand():
    y = [0.1, 0.3, 0.5, 0.52, 0.55, 0.40, 0.60, 0.62, 0.61, 0.63, 0.2]
    # |dy| < 0.05: i=3 (0.02), i=4 (0.03), i=5 no, i=7 (0.02), i=8 (0.01), i=9 (0.02) -> third in a row at i=9.
    assert stable_index(y, 0.05, 3) == 9
    assert stable_success(y, 0.05, 3) == pytest.approx((0.62 + 0.61 + 0.63) / 3)
    assert stable_index(y, 0.05, 2) == 4
    assert stable_success(y, 0.05, 2) == pytest.approx((0.52 + 0.55) / 2)
    assert stable_success(y, 0.05, 4) is None                # never four small changes in a row
    assert stable_success(y, 0.015, 1) == pytest.approx(0.61)
    with pytest.raises(ValueError, match="delta"):
        stable_success(y, 0.0, 3)
    with pytest.raises(ValueError, match="k must"):
        stable_success(y, 0.05, 0)


def test_steps_to_reach_and_acceleration_ratio():
    g = [0.0, 0.1, 0.25, 0.3, 0.45, 0.5, 0.48, 0.6]
    g_bar = 0.6
    assert steps_to_reach(g, 50, g_bar) == 4          # 0.3 >= 0.30 at the 4th step
    assert steps_to_reach(g, 80, g_bar) == 6          # 0.5 >= 0.48
    assert steps_to_reach(g, 100, g_bar) == 8
    assert steps_to_reach(g, 100, 0.7) is None
    with pytest.raises(ValueError, match="G-bar"):
        steps_to_reach(g, 50, None)
    with pytest.raises(ValueError, match="percentage"):
        steps_to_reach(g, 0, g_bar)
    assert acceleration_ratio(300, 100) == pytest.approx(2.0)
    assert acceleration_ratio(90, 120) == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="never reached"):
        acceleration_ratio(300, None)
    with pytest.raises(ValueError, match="> 0"):
        acceleration_ratio(300, 0)


def test_mean_ci95_by_hand():
    curves = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]
    mean, lower, upper = mean_ci95(curves)
    # column 0: mean 2, std 1, t_0.975(2 dof) = 4.302653 -> half width 4.302653 / sqrt(3) = 2.484138
    np.testing.assert_allclose(mean, [2.0, 0.0])
    np.testing.assert_allclose(upper - mean, [2.484138, 0.0], atol=1e-6)
    np.testing.assert_allclose(mean - lower, [2.484138, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="seeds >= 2"):
        mean_ci95([[1.0, 2.0]])
