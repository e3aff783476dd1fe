"""Can the head learn the jaw angle from the trunk's features at all? An offline probe.

For fresh 10-object scenes, the warm start's greedy pixel is grasped at all 8 jaw angles (each on the scene rebuilt
from its seed). The head (frozen trunks and BatchNorm, as the learner trains it: BCE on the logit, both jaw
orientations, Adam 1e-3) is then trained on the train scenes, either on all 8 labelled angles of each or on one
random angle (what an attempt gives), and judged on the test scenes by the angle it picks at their pixel.

    angle_probe.py CHECKPOINT OUT.json [--train 120 --test 40]
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
    """Per scene: the greedy pixel's cell features under all 16 rotations, readout weights, 8 outcomes."""
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
        samples.append({"seed": seed, "features": picked, "weights": weights, "outcomes": outcomes,
                        "own": a.rotation % ANGLES})
    return samples


def q_of(head, sample):
    """(16,) Q logits at the sample's pixel."""
    scores = head(sample["features"].unsqueeze(-1))[:, 0, :, 0]
    return (scores * sample["weights"]).sum(1)


def pick_success(head, samples):
    with torch.no_grad():
        picks = []
        for s in samples:
            q = q_of(head, s)
            sym = (q[:ANGLES] + q[ANGLES:]) / 2
            picks.append(s["outcomes"][int(sym.argmax())])
    return float(np.mean(picks))


def train(head, samples, all_angles, epochs, rng, lr=1e-3, batch=16):
    head = copy.deepcopy(head).eval()  # frozen BatchNorm, as the learner
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    items = []
    for i, s in enumerate(samples):
        for j in (range(ANGLES) if all_angles else [int(rng.integers(ANGLES))]):
            items.append((i, j))
    for _ in range(epochs):
        order = rng.permutation(len(items))
        for start in range(0, len(order), batch):
            loss = 0.0
            for k in order[start:start + batch]:
                i, j = items[k]
                q = q_of(head, samples[i])
                label = torch.tensor(float(samples[i]["outcomes"][j]))
                loss = loss + F.binary_cross_entropy_with_logits(q[j], label) \
                    + F.binary_cross_entropy_with_logits(q[j + ANGLES], label)
            opt.zero_grad()
            (loss / batch).backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            opt.step()
    return head, len(items)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    qnet, record = load_q_network(args.checkpoint)
    qnet.eval()
    ws = VPG_SIM_WORKSPACE.with_resolution(get_profile(record["profile"]).resolution)
    world = GraspWorld(SimConfig(num_objects=10, seed=0, auto_reset=False, workspace=ws))
    test = collect(qnet, world, ws, range(7000, 7000 + args.test))
    train_set = collect(qnet, world, ws, range(8000, 8000 + args.train))
    world.close()
    head = qnet.fcn.head
    result = {"checkpoint": args.checkpoint, "input_sampling": record.get("input_sampling", "nearest"),
              "train_scenes": args.train, "test_scenes": args.test,
              "test_mean_angle": float(np.mean([np.mean(s["outcomes"]) for s in test])),
              "test_best_angle": float(np.mean([any(s["outcomes"]) for s in test])),
              "test_own_angle": float(np.mean([s["outcomes"][s["own"]] for s in test])),
              "warm_head_pick": pick_success(head, test), "probes": []}
    for all_angles in (False, True):
        for seed in range(3):
            trained, n = train(head, train_set, all_angles, args.epochs, np.random.default_rng(seed))
            row = {"all_angles": all_angles, "seed": seed, "labels": n, "test_pick": pick_success(trained, test),
                   "train_pick": pick_success(trained, train_set)}
            result["probes"].append(row)
            print(row, flush=True)
    print(json.dumps({k: v for k, v in result.items() if k != "probes"}, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
