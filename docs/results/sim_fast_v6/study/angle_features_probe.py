"""Would fixed jaw-geometry features of the rotated heightmap let the head learn the angle from few labels?

Offline probe, like sim_fast_v5/study/angle_probe.py (same scenes: greedy pixel of the warm start, all 8 jaw angles
grasped, 120 train scenes, 40 test scenes; a cache of what the scenes gave). Per rotation, the head's logit gets
`w . g` added, g being the jaw-geometry maps (grasp_core.jaw_geometry: how much of the jaw's span the object fills,
how high things stand under the fingers) read out at the same score cells, as the learner's geometry head does.
Trained on one random angle per train scene (what an attempt gives) or on all 8, judged by the angle picked on the
test scenes.

    angle_features_probe.py CHECKPOINT CACHE.pt OUT.json
"""
import argparse
import copy
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from grasp_core.action_space import choose_grasp  # noqa: E402
from grasp_core.checkpoint import load_q_network  # noqa: E402
from grasp_core.learning import learning_config  # noqa: E402
from grasp_core.networks import heightmaps_to_tensors  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.rotation import InferenceOptions  # noqa: E402
from grasp_core.sim import GraspWorld, SimConfig  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402

ANGLES = 8


def collect(qnet, world, ws, seeds):
    actions = learning_config("default").actions
    samples = []
    for seed in tqdm(seeds, desc="scenes"):
        world.reset(seed=seed)
        color_hm, depth_hm = world.heightmap()
        q = qnet.predict(color_hm, depth_hm, InferenceOptions())
        a = choose_grasp(q, depth_hm, ws.resolution, actions, 0.0, np.random.default_rng(0))
        x, y, _ = ws.pixel_to_point(a.u, a.v)
        outcomes = []
        for j in range(ANGLES):
            world.reset(seed=seed)
            outcomes.append(bool(world.execute_grasp(x, y, qnet.angle(j)).grasp_success))
        color, depth = heightmaps_to_tensors(color_hm, depth_hm)
        rotations = list(range(qnet.num_rotations))
        with torch.no_grad():
            features = qnet.trunk_features(color, depth, rotations)
        h, w = color_hm.shape[:2]
        cells, weights = qnet.readout(rotations, [(a.u, a.v)] * len(rotations), h, w, features.shape[-2:])
        picked = features.flatten(2).gather(2, cells[:, None, :].expand(-1, features.shape[1], -1))
        samples.append({"seed": seed, "features": picked, "weights": weights, "cells": cells,
                        "score_size": tuple(features.shape[-2:]), "outcomes": outcomes, "own": a.rotation % ANGLES,
                        "u": a.u, "v": a.v, "depth": torch.from_numpy(np.ascontiguousarray(depth_hm))})
    return samples


def attach_geometry(qnet, samples):
    """Each sample's jaw-geometry maps (grasp_core.jaw_geometry, as the learner computes them) at its cells."""
    for s in samples:
        rotated = qnet._zoom_pad_rotate(s["depth"][None, None].float(), list(range(qnet.num_rotations)))
        g = qnet.fcn.jaw_geometry(rotated)
        assert tuple(g.shape[-2:]) == s["score_size"], (g.shape, s["score_size"])
        s["geometry"] = g.flatten(2).gather(2, s["cells"][:, None, :].expand(-1, g.shape[1], -1))  # (16, G, K)


class Probe(torch.nn.Module):
    def __init__(self, head, geometry_channels):
        super().__init__()
        self.head = copy.deepcopy(head).eval()
        self.geo = torch.nn.Linear(geometry_channels, 1, bias=False) if geometry_channels else None
        if self.geo is not None:
            torch.nn.init.zeros_(self.geo.weight)

    def q(self, s):
        scores = self.head(s["features"].unsqueeze(-1))[:, 0, :, 0]  # (16, K)
        if self.geo is not None:
            scores = scores + self.geo(s["geometry"].transpose(1, 2))[..., 0]
        return (scores * s["weights"]).sum(1)


def pick_success(probe, samples):
    with torch.no_grad():
        picks = []
        for s in samples:
            q = probe.q(s)
            sym = (q[:ANGLES] + q[ANGLES:]) / 2
            picks.append(s["outcomes"][int(sym.argmax())])
    return float(np.mean(picks))


def train(probe, samples, all_angles, epochs, rng, lr=1e-3, geo_lr=1e-2, batch=16):
    probe = copy.deepcopy(probe)
    groups = [{"params": probe.head.parameters(), "lr": lr}] if lr > 0 else []
    if probe.geo is not None:
        groups.append({"params": probe.geo.parameters(), "lr": geo_lr})
    opt = torch.optim.Adam(groups)
    items = [(i, j) for i, s in enumerate(samples)
             for j in (range(ANGLES) if all_angles else [int(rng.integers(ANGLES))])]
    for _ in range(epochs):
        order = rng.permutation(len(items))
        for start in range(0, len(order), batch):
            loss = 0.0
            for k in order[start:start + batch]:
                i, j = items[k]
                q = probe.q(samples[i])
                label = torch.tensor(float(samples[i]["outcomes"][j]))
                loss = loss + F.binary_cross_entropy_with_logits(q[j], label) \
                    + F.binary_cross_entropy_with_logits(q[j + ANGLES], label)
            opt.zero_grad()
            (loss / batch).backward()
            torch.nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
            opt.step()
    return probe, len(items)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("cache")
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    qnet, record = load_q_network(args.checkpoint)
    qnet.eval()
    resolution = get_profile(record["profile"]).resolution
    if os.path.exists(args.cache):
        test, train_set = torch.load(args.cache, weights_only=False)
    else:
        ws = VPG_SIM_WORKSPACE.with_resolution(resolution)
        world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False, workspace=ws))
        test = collect(qnet, world, ws, range(7000, 7000 + args.test))
        train_set = collect(qnet, world, ws, range(8000, 8000 + args.train))
        world.close()
        torch.save((test, train_set), args.cache)
    result = {"checkpoint": args.checkpoint, "train_scenes": len(train_set), "test_scenes": len(test),
              "test_mean_angle": float(np.mean([np.mean(s["outcomes"]) for s in test])),
              "test_own_angle": float(np.mean([s["outcomes"][s["own"]] for s in test])), "rows": []}
    print({k: v for k, v in result.items() if k != "rows"}, flush=True)
    qnet.enable_jaw_geometry(resolution)
    attach_geometry(qnet, test + train_set)
    channels = test[0]["geometry"].shape[1]
    # (name, geometry?, head lr, geometry lr); one label per scene: 30 epochs (~the updates of 250 attempts)
    settings = [("head", False, 1e-3, None), ("head + geometry", True, 1e-3, 0.1),
                ("head 3e-4 + geometry", True, 3e-4, 0.1), ("geometry, head frozen", True, 0.0, 0.03)]
    for all_angles, epochs in ((False, 30), (True, 5)):
        for name, geometry, lr, geometry_lr in settings:
            probe = Probe(qnet.fcn.head, channels if geometry else 0)
            picks = []
            for seed in range(args.seeds):
                trained, n = train(probe, train_set, all_angles, epochs, np.random.default_rng(seed), lr=lr,
                                   geo_lr=geometry_lr or 0.0)
                picks.append((pick_success(trained, test), pick_success(trained, train_set)))
            row = {"setting": name, "all_angles": all_angles, "labels": n, "epochs": epochs, "head_lr": lr,
                   "geometry_lr": geometry_lr, "test_pick": [p[0] for p in picks],
                   "train_pick": [p[1] for p in picks], "test_mean": float(np.mean([p[0] for p in picks])),
                   "test_std": float(np.std([p[0] for p in picks]))}
            if geometry:
                row["geometry_weights"] = trained.geo.weight.detach().flatten().tolist()
            result["rows"].append(row)
            print(row, flush=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
