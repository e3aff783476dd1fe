"""RotatingQNetwork: the angle convention, 90-degree equivariance and the fast-inference options."""
import math

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from grasp_core.networks import TwoStreamFCN, build_fcn, heightmaps_to_tensors
from grasp_core.rotation import InferenceOptions, RotatingQNetwork

torch.set_num_threads(1)
R = 16
SIZE = 48


def lollipop_template(scale: int) -> np.ndarray:
    """A blob at the kernel centre with a bar running to +u (the image's horizontal axis): direction-sensitive."""
    k = 28 * scale + 1
    c = (k - 1) / 2
    v, u = np.mgrid[0:k, 0:k].astype(float)
    blob = (u - c) ** 2 + (v - c) ** 2 <= (2.5 * scale) ** 2
    bar = (u >= c) & (u <= c + 12 * scale) & (np.abs(v - c) <= 1.0 * scale)
    t = (blob | bar).astype(np.float32)
    return t - t.mean()  # zero mean: blind to the constant background


def matched_filter_fcn(scale: int) -> TwoStreamFCN:
    """An FCN whose colour trunk is a matched filter for the lollipop; the head passes its response through."""
    t = torch.from_numpy(lollipop_template(scale))
    k = t.shape[0]
    color = nn.Conv2d(3, 1, k, stride=scale, padding=k // 2, bias=False)
    depth = nn.Conv2d(3, 1, 1, stride=scale, bias=False)
    with torch.no_grad():
        color.weight.copy_(t.expand(1, 3, k, k) / 3)
        depth.weight.zero_()
    fcn = TwoStreamFCN(color, depth, trunk_channels=1, stride=scale)
    with torch.no_grad():
        fcn.head.conv0.weight.zero_()
        fcn.head.conv0.weight[0, 0] = 1.0
        fcn.head.conv1.weight.zero_()
        fcn.head.conv1.weight[0, 0] = 1.0
    return fcn.eval()


def draw_lollipop(angle: float, centre: tuple[float, float], size: int = SIZE) -> np.ndarray:
    """White lollipop on black: blob at `centre` (u, v), bar pointing along (cos a, sin a) in (u, v) pixels."""
    v, u = np.mgrid[0:size, 0:size].astype(float)
    du, dv = u - centre[0], v - centre[1]
    along = du * math.cos(angle) + dv * math.sin(angle)
    across = -du * math.sin(angle) + dv * math.cos(angle)
    shape = (du ** 2 + dv ** 2 <= 6.25) | ((along >= 0) & (along <= 12) & (np.abs(across) <= 1.0))
    img = np.zeros((size, size, 3), np.uint8)
    img[shape] = 255
    return img


def argmax3(q: np.ndarray) -> tuple[int, int, int]:
    i, v, u = np.unravel_index(int(np.argmax(q)), q.shape)
    return int(i), int(u), int(v)


@pytest.mark.parametrize("zoom", [1, 2])
def test_rotating_input_by_90_degrees_moves_argmax_by_a_quarter_turn(zoom):
    qnet = RotatingQNetwork(matched_filter_fcn(scale=zoom), num_rotations=R, zoom=zoom).eval()
    k = 3  # the lollipop points along a_3 = 67.5 deg
    centre = (20.0, 27.0)
    color = draw_lollipop(k * 2 * math.pi / R, centre)
    depth = np.zeros((SIZE, SIZE), np.float32)
    q = qnet.predict(color, depth)
    assert q.shape == (R, SIZE, SIZE)
    i, u, v = argmax3(q)
    # Convention: Q[i] is for jaws closing along a_i; the trunk sees the input rotated by -a_i, so the
    # template's +u bar matches the drawn bar only at i = k, centred on the blob.
    assert i == k
    assert abs(u - centre[0]) <= 1 and abs(v - centre[1]) <= 1
    assert q[i].max() > 1.2 * np.delete(q, i, axis=0).max()  # a clear winner: the test means something

    # np.rot90(k=-1) rotates the (u, v) frame by +90 deg: (du, dv) -> (-dv, du), pixel (u, v) -> (W-1-v, u).
    q_rot = qnet.predict(np.rot90(color, k=-1).copy(), np.rot90(depth, k=-1).copy())
    i2, u2, v2 = argmax3(q_rot)
    assert i2 == (k + R // 4) % R
    assert abs(u2 - (SIZE - 1 - v)) <= 2 and abs(v2 - u) <= 2


def test_rotation_zero_is_the_plain_fcn_and_padding_matches_vpg():
    torch.manual_seed(0)
    fcn = build_fcn("small_cnn").eval()
    qnet = RotatingQNetwork(fcn, num_rotations=4, zoom=1).eval()
    rng = np.random.default_rng(0)
    color, depth = heightmaps_to_tensors(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                                         rng.random((32, 32), dtype=np.float32) * 0.05)
    side, top, left = qnet.padding(32, 32)
    assert (side, top, left) == (48, 8, 8)  # >= diagonal 45.3, divisible by stride 4, centred
    with torch.no_grad():
        padded = fcn(torch.nn.functional.pad(color, (8, 8, 8, 8)), torch.nn.functional.pad(depth, (8, 8, 8, 8)))
        q0 = qnet(color, depth, [0])
    torch.testing.assert_close(q0[0], padded[0, 0, 8:40, 8:40], rtol=1e-5, atol=1e-5)
    # VPG: 224 px, zoom 2, stride-32 trunk -> padded to 320 (640 after zoom), crop offset 48.
    vpg = RotatingQNetwork(TwoStreamFCN(nn.Identity(), nn.Identity(), 3, 32), num_rotations=16, zoom=2)
    assert vpg.padding(224, 224) == (320, 48, 48)


def test_fast_inference_options_agree_with_fp32_one_batch():
    qnet = RotatingQNetwork(matched_filter_fcn(scale=1), num_rotations=8, zoom=1).eval()
    color = draw_lollipop(2 * 2 * math.pi / 8, (25.0, 22.0))
    depth = np.zeros((SIZE, SIZE), np.float32)
    reference = qnet.predict(color, depth, InferenceOptions())
    for options in (InferenceOptions(chunk_size=1), InferenceOptions(chunk_size=3, bf16=True),
                    InferenceOptions(chunk_size=None, bf16=True, channels_last=True)):
        q = qnet.predict(color, depth, options)
        assert argmax3(q) == argmax3(reference), options
        assert np.abs(q - reference).max() <= 0.1 * np.abs(reference).max(), options

    # A random trunk with BN (eval mode): chunking is exact in fp32, bf16 stays close.
    torch.manual_seed(1)
    rnet = RotatingQNetwork(build_fcn("small_cnn"), num_rotations=8, zoom=2)
    rng = np.random.default_rng(1)
    c = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    d = rng.random((40, 40), dtype=np.float32) * 0.05
    ref = rnet.predict(c, d)
    np.testing.assert_allclose(rnet.predict(c, d, InferenceOptions(chunk_size=1)), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rnet.predict(c, d, InferenceOptions(channels_last=True)), ref, rtol=1e-4, atol=1e-5)
    fast = rnet.predict(c, d, InferenceOptions(chunk_size=4, bf16=True, channels_last=True))
    assert np.abs(fast - ref).max() <= 0.15 * np.ptp(ref)  # bf16 keeps ~3 significant digits per layer
    assert np.corrcoef(fast.ravel(), ref.ravel())[0, 1] > 0.99
    assert rnet.training  # q_maps restores the mode it found


def test_predict_many_gives_each_heightmap_its_own_predict():
    """The affordance node's batch: Q maps of several heightmaps (two sizes, in any order) in one call equal
    predict's one at a time, bitwise when the chunks hold one heightmap each, to fp tolerance when they mix."""
    torch.manual_seed(2)
    rnet = RotatingQNetwork(build_fcn("small_cnn"), num_rotations=8, zoom=2).eval()
    rng = np.random.default_rng(2)
    sizes = [(40, 40), (40, 40), (33, 47), (40, 40)]
    heightmaps = [(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), rng.random((h, w), dtype=np.float32) * 0.05)
                  for h, w in sizes]
    for options, exact in ((InferenceOptions(), True), (InferenceOptions(chunk_size=4), True),
                           (InferenceOptions(chunk_size=3), False)):
        single = [rnet.predict(c, d, options) for c, d in heightmaps]
        many = rnet.predict_many(heightmaps, options)
        assert len(many) == len(heightmaps)
        for q, expected in zip(many, single):
            assert q.shape == expected.shape and q.dtype == np.float32
            if exact:
                np.testing.assert_array_equal(q, expected)
            else:
                np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    with pytest.raises(ValueError, match="at least one heightmap"):
        rnet.predict_many([])
    color, depth = heightmaps_to_tensors(*heightmaps[0])
    with pytest.raises(ValueError, match="use q_maps_many"):
        rnet.q_maps(color.expand(2, -1, -1, -1), depth.expand(2, -1, -1, -1))


def test_forward_batch_one_rotation_per_input_and_bad_input():
    torch.manual_seed(2)
    qnet = RotatingQNetwork(build_fcn("small_cnn"), num_rotations=4, zoom=1).eval()
    color = torch.rand(2, 3, 32, 32)
    depth = torch.rand(2, 1, 32, 32) * 0.05
    with torch.no_grad():
        both = qnet(color, depth, [1, 3])
        first = qnet(color[:1], depth[:1], [1])
        second = qnet(color[1:], depth[1:], [3])
    torch.testing.assert_close(both, torch.cat((first, second)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rotation index 4"):
        qnet(color[:1], depth[:1], [4])
    with pytest.raises(ValueError, match="need 1 or 3"):
        qnet(color, depth, [0, 1, 2])
    with pytest.raises(ValueError, match="zoom"):
        RotatingQNetwork(build_fcn("small_cnn"), zoom=0)


# ------------------------------------------------------------------------------------------------------------
# Padding layout (issue 11, defect 1: odd heightmaps hung `padding` forever)

def _qnet_with_stride(stride: int, zoom: int, rotations: int = 16) -> RotatingQNetwork:
    return RotatingQNetwork(TwoStreamFCN(nn.Identity(), nn.Identity(), 3, stride), num_rotations=rotations,
                            zoom=zoom)


def _old_padding(height, width, zoom, stride, max_steps=1000):
    """The layout rule before issue 11 (None where its loop never ended)."""
    side = math.ceil(math.hypot(height, width)) + ((height - width) % 2)
    for _ in range(max_steps):
        if not ((side * zoom) % stride or (side - height) % 2 and (side - width) % 2):
            return side, (side - height) // 2, (side - width) // 2
        side += 1
    return None


@pytest.mark.parametrize("stride", [4, 16, 32])
@pytest.mark.parametrize("zoom", [1, 2])
def test_padding_exists_for_every_size_and_is_centred_whenever_possible(stride, zoom):
    qnet = _qnet_with_stride(stride, zoom)
    step = stride // math.gcd(stride, zoom)
    for height in range(1, 201):
        for width in range(1, 201):
            layout = qnet.layout(height, width)
            side, zside = layout.side, layout.zoomed_side
            where = f"{height}x{width}, stride {stride}, zoom {zoom}: {layout}"
            assert zside == side * zoom and zside % stride == 0, where
            assert side >= math.hypot(height, width), where  # every rotation keeps all of the heightmap
            assert side <= math.ceil(math.hypot(height, width)) + 1 + 2 * step, where  # and no more than needed
            assert 0 <= layout.zoomed_top and layout.zoomed_top + zoom * height <= zside, where
            assert 0 <= layout.zoomed_left and layout.zoomed_left + zoom * width <= zside, where
            # Centre offset of the heightmap in the square, in zoomed pixels (0 = rotations about it are exact).
            off_v = 2 * layout.zoomed_top + zoom * height - zside
            off_u = 2 * layout.zoomed_left + zoom * width - zside
            possible = zoom % 2 == 0 or ((height - width) % 2 == 0 and (step % 2 == 1 or height % 2 == 0))
            assert layout.centred == possible, where
            if possible:
                assert off_v == 0 and off_u == 0, where
            else:  # half a heightmap pixel off in an odd axis, never more, with room for the rotated content
                assert off_v in (0, -zoom) and off_u in (0, -zoom) and (off_v, off_u) != (0, 0), where
                assert side >= math.ceil(math.hypot(height, width)) + 1, where
            whole = (height - width) % 2 == 0 and (step % 2 == 1 or height % 2 == 0)
            assert layout.whole_pixels == (whole or not possible), where
            old = _old_padding(height, width, zoom, stride)
            if whole:  # VPG's whole-pixel layout: exactly what the code did before
                assert old == (side, layout.top, layout.left), where
            if old is None:  # the sizes that used to hang
                assert height % 2 == 1 and width % 2 == 1 and step % 2 == 0, where
            assert qnet.padding(height, width) == (side, layout.top, layout.left)


def test_padding_refuses_sizes_that_are_not_positive_integers():
    qnet = _qnet_with_stride(4, 1)
    for bad in [(0, 5), (5, -1), (2.5, 4), (True, 4)]:
        with pytest.raises(ValueError, match="positive integer"):
            qnet.layout(*bad)


def test_the_issue_repro_returns_at_once():
    """`get_profile('fast').build_q_network().padding(111, 111)` never returned (issue 11): run it in a child
    process with a generous limit, so a regression fails here instead of hanging the test run."""
    import subprocess
    import sys

    code = ("from grasp_core.profiles import get_profile; q = get_profile('fast').build_q_network(); "
            "print(q.padding(111, 111), q.padding(149, 149))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("padding(111, 111) of the fast profile did not return within 240 s")
    assert done.returncode == 0, done.stderr
    # The fast profile pads to the stride only (pad="none"): the smallest multiple of 8 around the heightmap,
    # centred on half a pixel (= a whole zoomed pixel at zoom 2).
    assert done.stdout.split() == ["(112,", "0.5,", "0.5)", "(152,", "1.5,", "1.5)"]


class PoolFCN(nn.Module):
    """A stand-in FCN whose score map is the mean colour averaged over stride x stride cells: linear, and
    exactly equivariant to quarter turns of a square whose side is a multiple of the stride."""

    trunk_name = "pool"

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride
        self.unused = nn.Parameter(torch.zeros(1))  # predict() asks for the parameters' device
        self.head = nn.Identity()

    def features(self, color, depth):
        return F.avg_pool2d(color.mean(1, keepdim=True) + depth, self.stride)

    # RotatingQNetwork runs score(with_geometry(features(...), depth)), as TwoStreamFCN.score_map does
    def with_geometry(self, features, depth):
        return features  # no jaw geometry

    def score(self, features):
        return self.head(features)

    def score_map(self, color, depth):
        return self.head(self.features(color, depth))





@pytest.mark.parametrize("size,stride,zoom", [
    ((48, 48), 4, 1), ((47, 47), 4, 2), ((45, 45), 16, 2), ((46, 47), 4, 2), ((33, 33), 3, 1), ((20, 21), 4, 2),
])
def test_quarter_turns_of_the_heightmap_are_exact_for_centred_layouts(size, stride, zoom):
    """Rotations happen about the padded square's centre, so Q(rot90 x)[i + R/4] == rot90(Q(x)[i]) exactly
    (up to float rounding) only when the heightmap is centred in it: odd sizes included, at an even zoom."""
    height, width = size
    qnet = RotatingQNetwork(PoolFCN(stride), num_rotations=8, zoom=zoom, back_rotation="bilinear").eval()
    assert qnet.layout(height, width).centred
    rng = np.random.default_rng(height * 1000 + width)
    color = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    depth = (rng.random((height, width)) * 0.05).astype(np.float32)
    q = qnet.predict(color, depth)
    q_rot = qnet.predict(np.rot90(color, k=-1).copy(), np.rot90(depth, k=-1).copy())
    assert q.shape == (8, height, width) and q_rot.shape == (8, width, height)
    for i in (0, 2, 4, 6):  # the rotations that are quarter turns themselves map pixels onto pixels
        np.testing.assert_allclose(q_rot[(i + 2) % 8], np.rot90(q[i], k=-1), rtol=1e-5, atol=1e-5,
                                   err_msg=f"rotation {i}, {height}x{width}, stride {stride}, zoom {zoom}")


def test_reading_q_at_pixel_centres_is_upsample_and_crop_for_whole_offsets():
    from grasp_core.rotation import _sample_pixel_centres

    torch.manual_seed(0)
    score = torch.randn(3, 1, 10, 10)
    side, top, left, height, width = 40, 7, 5, 27, 30
    reference = F.interpolate(score, size=(side, side), mode="bilinear", align_corners=False)
    reference = reference[:, :, top:top + height, left:left + width]
    torch.testing.assert_close(_sample_pixel_centres(score, top, left, side, height, width), reference,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(63, 63), (64, 63), (1, 1), (3, 200)])
def test_tiny_profile_predicts_odd_and_thin_heightmaps(shape):
    from grasp_core.profiles import get_profile

    torch.manual_seed(0)
    qnet = get_profile("tiny").build_q_network().eval()
    rng = np.random.default_rng(0)
    q = qnet.predict(rng.integers(0, 255, shape + (3,), dtype=np.uint8),
                     (rng.random(shape) * 0.05).astype(np.float32))
    assert q.shape == (4,) + shape and np.isfinite(q).all()


@pytest.mark.parametrize("size", [47, 48])
@pytest.mark.parametrize("zoom", [1, 2])
def test_odd_sized_heightmaps_keep_the_angle_convention(size, zoom):
    qnet = RotatingQNetwork(matched_filter_fcn(scale=zoom), num_rotations=R, zoom=zoom).eval()
    k, centre = 5, (21.0, 24.0)
    color = draw_lollipop(k * 2 * math.pi / R, centre, size)
    q = qnet.predict(color, np.zeros((size, size), np.float32))
    i, u, v = argmax3(q)
    assert i == k and abs(u - centre[0]) <= 1 and abs(v - centre[1]) <= 1


@pytest.mark.parametrize("back_rotation", ["nearest", "bilinear", "upsampled"])
@pytest.mark.parametrize("pad,zoom,height,width", [("diagonal", 2, 48, 48), ("none", 2, 32, 32),
                                                   ("diagonal", 2, 33, 33), ("diagonal", 1, 30, 41)])
def test_readout_gives_q_at_a_pixel_as_the_full_maps_do(back_rotation, pad, zoom, height, width):
    """The update reads Q at one pixel per map from a few score cells (RotatingQNetwork.readout)."""
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 8, zoom, back_rotation, pad)
    layout = qnet.layout(height, width)
    cells_per_side = layout.zoomed_side // qnet.fcn.stride
    rng = np.random.default_rng(3)
    n = 24
    rotations = [int(r) for r in rng.integers(8, size=n)]
    pixels = [(int(u), int(v)) for u, v in zip(rng.integers(width, size=n), rng.integers(height, size=n))]
    pixels[:4] = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]  # corners: cut-off cells
    score = torch.from_numpy(rng.normal(size=(n, 1, cells_per_side, cells_per_side)).astype(np.float32))
    full = qnet.score_to_q(score, rotations, height, width)
    expected = full[torch.arange(n), [v for _, v in pixels], [u for u, _ in pixels]]
    cells, weights = qnet.readout(rotations, pixels, height, width, score.shape[-2:])
    assert cells.shape[1] <= 16  # bilinear of bilinear: at most 4 x 4 cells
    torch.testing.assert_close((score.flatten(1).gather(1, cells) * weights).sum(1), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        qnet.readout([0], [(width, 0)], height, width, score.shape[-2:])


@pytest.mark.parametrize("zoom,height,width,pad", [(2, 48, 48, "diagonal"), (2, 33, 33, "diagonal"),
                                                   (1, 30, 41, "diagonal"), (2, 112, 112, "none")])
def test_trunk_inputs_are_one_gather_equal_to_zoom_pad_rotate(zoom, height, width, pad):
    """trunk_features copies pixels with a cached index map: bit-identical to interpolate + pad + grid_sample."""
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 16, zoom, "nearest", pad)
    seen = {}
    qnet.fcn.features = lambda color, depth: seen.update(color=color, depth=depth)
    rng = np.random.default_rng(1)
    color = torch.from_numpy(rng.random((3, 3, height, width), dtype=np.float32))
    depth = torch.from_numpy(rng.random((3, 1, height, width), dtype=np.float32))
    for batch, rotations in ((slice(0, 1), list(range(16))), (slice(0, 3), [5, 0, 13])):
        qnet.trunk_features(color[batch], depth[batch], rotations)
        assert torch.equal(seen["color"], qnet._zoom_pad_rotate(color[batch], rotations))
        assert torch.equal(seen["depth"], qnet._zoom_pad_rotate(depth[batch], rotations))
    with pytest.raises(ValueError, match="of one size"):
        qnet.trunk_features(color[:1], depth[:1, :, :-1], [0])


@pytest.mark.parametrize("height,width,pad", [(48, 48, "diagonal"), (112, 112, "none"), (33, 33, "diagonal")])
def test_bilinear_input_sampling_is_smooth_and_exact_under_quarter_turns(height, width, pad):
    """input_sampling="bilinear": rotation 0 is the heightmap upsampled bilinearly (no 2 x 2 blocks), the
    quarter turns are exact, and every angle samples the heightmap alike (weights summing to 1 inside it)."""
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 16, 2, "bilinear", pad, input_sampling="bilinear")
    seen = {}
    qnet.fcn.features = lambda color, depth: seen.update(color=color, depth=depth)
    rng = np.random.default_rng(3)
    depth = rng.random((height, width), dtype=np.float32)
    color = rng.random((3, height, width), dtype=np.float32)

    def trunk_input(d, rotations):
        qnet.trunk_features(torch.from_numpy(np.ascontiguousarray(color[:, :d.shape[0], :d.shape[1]]))[None],
                            torch.from_numpy(np.ascontiguousarray(d))[None, None], rotations)
        return seen["depth"][:, 0]

    layout = qnet.layout(height, width)
    top, left = layout.zoomed_top, layout.zoomed_left
    upsampled = F.interpolate(torch.from_numpy(depth)[None, None], scale_factor=2, mode="bilinear",
                              align_corners=False)[0, 0]
    inside = trunk_input(depth, [0])[0, top:top + 2 * height, left:left + 2 * width]
    torch.testing.assert_close(inside[1:-1, 1:-1], upsampled[1:-1, 1:-1])  # the outer ring repeats the edge
    quarter = trunk_input(np.rot90(depth, k=1).copy(), [0])[0]
    torch.testing.assert_close(trunk_input(depth, [4])[0], quarter)
    for rotation in range(16):
        _, weights = qnet._source_taps(rotation, height, width, torch.device("cpu"))
        sums = weights.sum(1)
        assert torch.all((sums.abs() < 1e-6) | ((sums - 1).abs() < 1e-5))
    with pytest.raises(ValueError, match="input_sampling"):
        RotatingQNetwork(build_fcn("small_cnn"), 16, 2, input_sampling="bicubic")


def test_index_maps_made_in_inference_mode_serve_a_training_step():
    """The affordance node predicts under torch.inference_mode; the same network may then be trained."""
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 4, 1, "bilinear")
    color, depth = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32) * 0.05
    with torch.inference_mode():
        qnet.q_maps(color, depth)
    qnet.train()
    qnet(color, depth, [1])[0, 3, 4].backward()
    assert all(p.grad is not None for p in qnet.fcn.color_trunk.parameters())
