"""How much of the angle do the four jaw-geometry maps alone carry? A logistic regression on them (no trunk
features), fitted to one random angle of N train scenes of angle_features_probe.py's cache, judged by the angle it
picks on the 40 test scenes; 5 random draws per N.

    geometry_logistic.py CHECKPOINT CACHE.pt OUT.json
"""
import json
import sys

import numpy as np
import torch

from angle_features_probe import ANGLES, attach_geometry
from grasp_core.checkpoint import load_q_network
from grasp_core.profiles import get_profile


def fit(x, y, l2=0.0):
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=500)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach().numpy()


def per_angle(sample):
    """(8, 4): the maps read out at the sample's pixel, both jaw orientations averaged."""
    g = (sample["geometry"] * sample["weights"][:, None, :]).sum(-1)
    return ((g[:ANGLES] + g[ANGLES:]) / 2).numpy()


def main():
    checkpoint, cache, out = sys.argv[1:4]
    torch.set_num_threads(1)
    qnet, record = load_q_network(checkpoint)
    qnet.eval().enable_jaw_geometry(get_profile(record["profile"]).resolution)
    test, train = torch.load(cache, weights_only=False)
    attach_geometry(qnet, test + train)
    rows = []
    for n in (30, 60, 120):
        picks, weights = [], []
        for draw in range(5):
            rng = np.random.default_rng(draw)
            scenes, angles = rng.permutation(len(train))[:n], rng.integers(ANGLES, size=n)
            x = np.stack([per_angle(train[i])[j] for i, j in zip(scenes, angles)])
            y = np.array([train[i]["outcomes"][j] for i, j in zip(scenes, angles)], float)
            w = fit(x, y)
            picks.append(float(np.mean([s["outcomes"][int(np.argmax(per_angle(s) @ w[:-1]))] for s in test])))
            weights.append(w[:-1].tolist())
        rows.append({"train_scenes": n, "test_pick": picks, "test_mean": float(np.mean(picks)),
                     "weights": weights})
        print(n, np.round(picks, 3), round(float(np.mean(picks)), 3), flush=True)
    with open(out, "w") as f:
        json.dump({"checkpoint": checkpoint, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
