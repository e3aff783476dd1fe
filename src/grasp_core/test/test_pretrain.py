"""Pretraining Q_s: resampling, augmentation, the training loop and the grasp-pretrain command."""
import dataclasses
import json
import os
import sys

import numpy as np
import pytest
import torch

from grasp_core import checkpoint
from grasp_core.dataset import KeypointSample, save_dataset
from grasp_core.learning import PRESETS
from grasp_core.pretrain import (PretrainConfig, TrainingImage, augment, main, prepare_images, pretrain,
                                 pretrain_from_dataset)
from grasp_core.profiles import get_profile
from grasp_core.workspace import WorkspaceLimits

sys.path.insert(0, os.path.dirname(__file__))
from blob_world import BlobWorld  # noqa: E402

torch.set_num_threads(1)


def _peak(label):
    v, u = np.unravel_index(int(np.argmax(label)), label.shape)
    return int(u), int(v)


def test_prepare_images_resamples_heightmaps_points_and_sigmas():
    color = np.zeros((64, 64, 3), np.uint8)
    depth = np.zeros((64, 64), np.float32)
    depth[40:48, 10:18] = 0.03  # object centred on pixel (13.5, 43.5)
    sample = KeypointSample("a", color, depth, np.array([[13.5, 43.5]]), np.array([4.0]))
    same = prepare_images([sample])[0]
    assert same.label.shape == (64, 64) and same.label.max() == pytest.approx(1.0)
    half = prepare_images([sample], scale=0.5)[0]
    assert half.color.shape == (32, 32, 3) and half.depth.shape == (32, 32)
    # The object now covers pixels 20..23 x 5..8: the label peak stays on it.
    u, v = _peak(half.label)
    assert 5 <= u <= 8 and 20 <= v <= 23 and half.depth[v, u] > 0.02
    # sigma halves too: the label's width (pixels above 1/2) halves.
    assert (half.label > 0.5).sum() == pytest.approx((same.label > 0.5).sum() / 4, rel=0.3)
    with pytest.raises(ValueError, match="no samples"):
        prepare_images([])


def test_augmentation_moves_heightmaps_and_labels_together():
    world = BlobWorld(seed=4, num_blobs=1, num_stains=0)
    image = prepare_images([world.keypoint_sample("x")])[0]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(16):
        a = augment(image, rng)
        u, v = _peak(a.label)
        assert a.depth[v, u] > 0  # the label peak still sits on the (moved) blob
        assert np.array_equal(a.depth > 0, np.any(a.color != 30, axis=2))  # colour moved with depth
        seen.add(_peak(a.label))
    assert len(seen) >= 4  # it really transforms


def test_kl_pretraining_learns_where_objects_are():
    world = BlobWorld(seed=7)
    samples = []
    for i in range(16):
        world.reset()
        samples.append(world.keypoint_sample(f"{i}"))
    images = prepare_images(samples)
    torch.manual_seed(0)
    qnet = get_profile("tiny").build_q_network()

    def hit_rate():  # greedy pixel lands on a blob, over fresh scenes
        test_world, hits = BlobWorld(seed=99), []
        for _ in range(20):
            test_world.reset()
            c, d = test_world.heightmaps()
            q = qnet.predict(c, d)
            _, v, u = np.unravel_index(int(np.argmax(q)), q.shape)
            hits.append(d[v, u] > 0)
        return float(np.mean(hits))

    before = hit_rate()
    result = pretrain(qnet, images, PretrainConfig(profile="tiny", epochs=15, lr=1e-3, seed=0), progress=False)
    assert result.steps == 15 * 4 and result.images == 16 and len(result.epoch_losses) == 15
    assert result.epoch_losses[-1] < 0.5 * result.epoch_losses[0]
    after = hit_rate()
    assert after >= 0.9 and after > before


def test_empty_images_are_left_out_of_kl_only():
    world = BlobWorld(seed=1)
    full = prepare_images([world.keypoint_sample("a")])[0]
    empty = TrainingImage(np.zeros_like(full.color), np.zeros_like(full.depth), np.zeros_like(full.label))
    torch.manual_seed(0)
    qnet = get_profile("tiny").build_q_network()
    assert pretrain(qnet, [full, empty], PretrainConfig(profile="tiny", epochs=1, batch_size=1),
                    progress=False).images == 1
    assert pretrain(qnet, [full, empty], PretrainConfig(profile="tiny", epochs=1, batch_size=1, loss="mse"),
                    progress=False).images == 2
    with pytest.raises(ValueError, match="no image has key points"):
        pretrain(qnet, [empty], PretrainConfig(profile="tiny", epochs=1), progress=False)
    with pytest.raises(ValueError, match="unknown loss"):
        PretrainConfig(loss="ce")
    with pytest.raises(ValueError, match="unknown profile"):
        PretrainConfig(profile="huge")


def test_grasp_pretrain_command(tmp_path, capsys):
    world = BlobWorld(size=64, seed=2, radius=(6, 9))  # recorded at 3.5 mm: resampled to tiny's 7 mm
    samples = []
    for i in range(4):
        world.reset()
        samples.append(world.keypoint_sample(f"{i:06d}"))
    workspace = WorkspaceLimits(0.0, 0.224, 0.0, 0.224, 0.0, 0.3, 0.0035)
    save_dataset(tmp_path / "ds", samples, workspace)
    out = tmp_path / "qs.safetensors"
    code = main(["--dataset", str(tmp_path / "ds"), "--profile", "tiny", "--epochs", "2", "--loss", "smooth_l1",
                 "--out", str(out), "--logdir", str(tmp_path / "tb"), "--quiet", "--threads", "1"])
    assert code == 0
    _, meta = checkpoint.load_model(out)
    assert meta["stage"] == "pretrain" and meta["trunk"] == "small_cnn" and meta["profile"] == "tiny"
    assert meta["config"]["heightmap_shape"] == [32, 32] and meta["config"]["pretrain"]["loss"] == "smooth_l1"
    assert meta["step"] == 2 and json.loads(checkpoint.sidecar_path(out).read_text())["step"] == 2
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
    assert "wrote" in capsys.readouterr().out

    assert main(["--dataset", str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2
    assert "grasp-keypoints" in capsys.readouterr().err
    assert main(["--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "x.pt"), "--quiet"]) == 2
    with pytest.raises(SystemExit):
        main(["--dataset", str(tmp_path / "ds"), "--out", str(out), "--profile", "huge"])


def test_pretrain_from_dataset_is_the_steps_it_names(tmp_path):
    """The one library entry point: seed, load + resample, build, train; the same weights as those steps by hand."""
    world = BlobWorld(size=64, seed=3, radius=(6, 9))
    samples = []
    for i in range(3):
        world.reset()
        samples.append(world.keypoint_sample(f"{i:06d}"))
    workspace = WorkspaceLimits(0.0, 0.224, 0.0, 0.224, 0.0, 0.3, 0.0035)
    save_dataset(tmp_path / "ds", samples, workspace)
    config = PretrainConfig(profile="tiny", epochs=1, batch_size=2, seed=5)
    lines = []
    trained = pretrain_from_dataset(tmp_path / "ds", config, progress=False, log=lines.append)
    assert trained.heightmap_shape == (32, 32) and trained.result.steps == 2 and "3 images of 32x32" in lines[0]

    torch.manual_seed(5)
    profile = get_profile("tiny")
    qnet = profile.build_q_network()
    pretrain(qnet, prepare_images(samples, 0.0035 / profile.resolution), config, progress=False)
    for name, value in qnet.state_dict().items():
        assert torch.equal(value, trained.qnet.state_dict()[name]), name
    path = trained.save(tmp_path / "qs.safetensors", {"note": "test"})
    _, meta = checkpoint.load_model(path)
    assert meta["stage"] == "pretrain" and meta["step"] == 2 and meta["config"] == {"note": "test"}
    assert meta["action_space"] == dataclasses.asdict(PRESETS["default"].actions)  # served as measured (1.4)


def test_augmentation_keeps_the_shape_of_non_square_heightmaps():
    rng = np.random.default_rng(1)
    color = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    depth = rng.uniform(0, 0.05, (48, 80)).astype(np.float32)
    image = TrainingImage(color, depth, depth.copy())
    results = [augment(image, rng) for _ in range(12)]
    assert {r.depth.shape for r in results} == {(48, 80)}
    assert all(np.array_equal(r.depth, r.label) for r in results)
    assert len({r.depth.tobytes() for r in results}) >= 3  # still transformed: identity, flips, half turns


def test_kl_pretraining_puts_map_peaks_on_the_reward_scale():
    """After KL pretraining the map peaks sit at ~1 and the empty table at ~0 (the reward scale)."""
    from grasp_core.pretrain import _batch

    world = BlobWorld(seed=11)
    images = prepare_images([world.keypoint_sample(str(i)) for i in range(6)])
    qnet = get_profile("tiny").build_q_network()
    pretrain(qnet, images, PretrainConfig(profile="tiny", epochs=3, lr=1e-2), progress=False)
    with torch.no_grad():
        maps = [qnet(*_batch([im])[:2], [0])[0].numpy() for im in images]
    assert np.median([m.max() for m in maps]) == pytest.approx(1.0, rel=1e-3)
    assert np.median([np.median(m[im.label < 0.05]) for m, im in zip(maps, images)]) == pytest.approx(0.0, abs=1e-3)
    uncalibrated = get_profile("tiny").build_q_network()
    pretrain(uncalibrated, images, PretrainConfig(profile="tiny", epochs=3, lr=1e-2, calibrate_q=False),
             progress=False)
    with torch.no_grad():
        raw = [float(uncalibrated(*_batch([im])[:2], [0]).max()) for im in images]
    assert abs(np.median(raw) - 1.0) > 0.05  # the raw KL logits are on another scale


def test_batchnorm_statistics_are_re_estimated_after_pretraining():
    """Eval-mode BatchNorm uses running statistics: after pretraining they describe the training images."""
    from grasp_core.pretrain import recalibrate_batchnorm

    world = BlobWorld(seed=5)
    images = prepare_images([world.keypoint_sample(str(i)) for i in range(4)])
    qnet = get_profile("tiny").build_q_network().eval()
    norms = [m for m in qnet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(m.running_var == 1) for m in norms)  # fresh
    batches = recalibrate_batchnorm(qnet, images, batch_size=2, seed=0)
    assert batches == 2
    assert all(not torch.all(m.running_var == 1) for m in norms)
    assert all(m.momentum == 0.1 for m in norms) and not qnet.training  # settings restored


def test_progress_bar_stays_out_of_logs(capsys):
    """Progress on, but stderr is not a terminal (a log file, CI): tqdm writes no carriage-return spam."""
    world = BlobWorld(size=32, seed=3)
    world.reset()
    images = prepare_images([world.keypoint_sample("000000")], 1.0)
    qnet = get_profile("tiny").build_q_network()
    pretrain(qnet, images, PretrainConfig(profile="tiny", epochs=2, batch_size=1, recalibrate_bn=False,
                                          calibrate_q=False), progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "pretrain kl" not in err


def test_cli_choices_and_defaults_match_the_library():
    """pretrain_cli spells out the choices so `--help` needs no torch: they must be the library's."""
    from grasp_core.losses import LOSSES
    from grasp_core.pretrain_cli import DEFAULTS, LOSS_NAMES, PROFILE_NAMES
    from grasp_core.profiles import PROFILES

    assert set(PROFILE_NAMES) == set(PROFILES) and set(LOSS_NAMES) == set(LOSSES)
    config = PretrainConfig()
    assert DEFAULTS == {name: getattr(config, name) for name in DEFAULTS}
