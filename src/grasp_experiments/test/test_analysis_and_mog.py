"""Metrics from raw logs and the MoG region-of-interest model, on synthetic data (no simulator)."""
import json

import numpy as np
import pytest
import torch

from grasp_experiments.analysis import MetricSettings, load_runs, summarise, summary_json
from grasp_experiments.methods import _DENSENET_OLD_KEY, build_q_network, method_profile
from grasp_experiments.mog import MogRegionOfInterest


def _write_run(root, method, objects, seed, successes):
    run = root / "runs" / method / f"objects_{objects:02d}" / f"seed_{seed:02d}"
    run.mkdir(parents=True)
    with open(run / "attempts.jsonl", "w") as f:
        for t, s in enumerate(successes):
            f.write(json.dumps({"step": t, "success": int(s)}) + "\n")
    spec = {"method": method, "num_objects": objects, "seed": seed, "steps": len(successes), "profile": "tiny",
            "object_set": "train"}
    (run / "done.json").write_text(json.dumps({"spec": spec}))


def test_cs_and_acceleration_ratio_from_logs(tmp_path):
    # ours succeeds from attempt 11 on, vanilla from attempt 31 on (both seeds alike): with window 10 the mean
    # G reaches 1.0 at attempts 20 and 40, and 50 % of G-bar = 1.0 at attempts 15 and 35.
    ours = np.r_[np.zeros(10), np.ones(50)]
    vanilla = np.r_[np.zeros(30), np.ones(30)]
    for seed in (0, 1):
        _write_run(tmp_path, "ours", 4, seed, ours)
        _write_run(tmp_path, "vanilla", 4, seed, vanilla)
    runs = load_runs(tmp_path)
    summary = summarise(runs, MetricSettings(window=10, box=10, delta=0.05, k=2))
    o, v = summary["cells"][("ours", 4)], summary["cells"][("vanilla", 4)]
    assert o.gbar == pytest.approx(1.0) and o.settled
    assert v.gbar == pytest.approx(1.0)
    assert o.cs[50] == 15 and o.cs[90] == 19
    assert v.cs[50] == 35 and v.cs[90] == 39
    m = summary["ratios"][("ours", 4)]
    assert m[50]["m"] == pytest.approx((35 - 15) / 15)
    assert m[90]["m"] == pytest.approx((39 - 19) / 19)
    assert o.success_rate == pytest.approx(50 / 60)
    compact = summary_json(summary)
    assert compact["acceleration_ratios"][0]["Cs(50)"]["m"] == pytest.approx(round(20 / 15, 4))


def test_unsettled_gbar_and_baseline_that_never_gets_there(tmp_path):
    rising = np.r_[np.zeros(20), np.ones(20)]  # boxes 0, 0, 1, 1: the last k = 3 boxes are not steady
    for seed in (0, 1):
        _write_run(tmp_path, "ours", 2, seed, rising)
        _write_run(tmp_path, "vanilla", 2, seed, np.zeros(40))
    summary = summarise(load_runs(tmp_path), MetricSettings(window=10, box=10, delta=0.05, k=3))
    ours, vanilla = summary["cells"][("ours", 2)], summary["cells"][("vanilla", 2)]
    assert not ours.settled and ours.gbar == pytest.approx(2 / 3)  # mean of the last k = 3 boxes
    assert vanilla.gbar == 0 and vanilla.cs[50] is None
    shared = summarise(load_runs(tmp_path), MetricSettings(window=10, box=10, delta=0.05, k=3, gbar="shared"))
    assert shared["cells"][("vanilla", 2)].cs[50] is None
    row = shared["ratios"][("ours", 2)]
    assert row[50]["bound"] == ">=" and row[50]["m"] == pytest.approx((40 - ours.cs[50]) / ours.cs[50])


def test_unfinished_or_short_runs_are_handled(tmp_path):
    _write_run(tmp_path, "ours", 2, 0, np.ones(10))
    unfinished = tmp_path / "runs" / "ours" / "objects_02" / "seed_01"
    unfinished.mkdir()
    (unfinished / "attempts.jsonl").write_text('{"step": 0, "success": 1}\n')
    runs = load_runs(tmp_path)
    assert list(runs[("ours", 2)]) == [0]  # the run without done.json is left out
    done = tmp_path / "runs" / "ours" / "objects_02" / "seed_00" / "done.json"
    record = json.loads(done.read_text())
    record["spec"]["steps"] = 11
    done.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="10 attempts logged, 11 expected"):
        load_runs(tmp_path)


def _scene(rng, blobs):
    color = np.full((48, 48, 3), 110, np.uint8) + rng.integers(0, 3, (48, 48, 3)).astype(np.uint8)
    depth = np.zeros((48, 48), np.float32)
    for (r, c) in blobs:
        color[r:r + 6, c:c + 6] = (220, 40, 40)
        depth[r:r + 6, c:c + 6] = 0.03
    return color, depth


def test_mog_region_of_interest_marks_objects_not_table():
    rng = np.random.default_rng(0)
    frames = [_scene(rng, [tuple(rng.integers(0, 42, 2))]) for _ in range(12)]  # the object moves around
    roi = MogRegionOfInterest().fit(frames)
    color, depth = _scene(rng, [(20, 30)])
    mask = roi.mask(color, depth)
    assert mask[20:26, 30:36].all()  # the object is inside the region of interest
    assert mask.sum() < 6 * 6 * 2.5  # and the region hugs it (grown by one pixel, not the whole table)
    empty = roi.mask(*_scene(rng, []))
    assert empty.sum() == 0
    grey = color.copy()
    grey[20:26, 30:36] = 110  # a table-coloured object is still found by its height
    assert roi.mask(grey, depth)[21:25, 31:35].all()
    with pytest.raises(ValueError, match="fitted"):
        MogRegionOfInterest().mask(color, depth)


def test_poi_trunks_load_imagenet_file(tmp_path, monkeypatch):
    import torchvision

    reference = torchvision.models.mobilenet_v2()
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(reference.state_dict(), path)
    profile = method_profile("poi", "tiny")
    assert profile.trunk == "mobilenet_v2" and profile.imagenet
    qnet = build_q_network("poi", profile, imagenet_weights=path)
    first = qnet.fcn.color_trunk[0][0].weight
    assert torch.equal(first, reference.features[0][0].weight)
    assert torch.equal(qnet.fcn.depth_trunk[0][0].weight, first)
    assert method_profile("poi", "fast").name == "poi" and method_profile("vanilla", "fast").name == "fast"
    with pytest.raises(ValueError, match="densenet121-a639ec97"):
        build_q_network("poi", method_profile("poi", "paper"))
    # torchvision's DenseNet file uses the old key names; they are renamed as torchvision does
    assert _DENSENET_OLD_KEY.sub(r"\1\2", "features.denseblock1.denselayer1.norm.1.weight") == \
        "features.denseblock1.denselayer1.norm1.weight"

