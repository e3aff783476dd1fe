"""The seed's simulated pretraining set: N rendered scenes annotated from the simulator's ground truth.

A thin command over `grasp_core.sim.make_keypoint_dataset`: one key point per object at its footprint
centre, sigma = radius of the disc with the footprint's area, plus optional Gaussian click noise (pixels) to
imitate a person's clicks. The result is an ordinary `grasp-keypoints` v1 dataset.

    python -m grasp_annotation.sim_keypoints data/sim_keypoints --num-images 50 --click-noise 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grasp_core.dataset import INDEX_FILE, DatasetError, load_dataset


def parse_object_counts(text: str) -> list[int]:
    """'4' -> [4]; '1-10' -> [1, ..., 10]; '2,4,6' -> [2, 4, 6]."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            counts = list(range(low, high + 1))
        else:
            counts = [int(part) for part in text.split(",")]
    except ValueError as e:
        raise ValueError(f"objects per image must look like 4, 1-10 or 2,4,6; got {text!r}") from e
    if not counts:
        raise ValueError(f"objects per image {text!r} gives no counts")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="sim_keypoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="output folder (must not hold a dataset yet, unless --overwrite)")
    parser.add_argument("--num-images", type=int, default=50, help="images to render (seed: 50)")
    parser.add_argument("--objects", default="1-10", help="objects per image: 4, 1-10 or 2,4,6 (default 1-10)")
    parser.add_argument("--click-noise", type=float, default=0.0, help="std of the click scatter, pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scenes and clicks")
    parser.add_argument("--object-set", default="train", help="'train' (the library's training objects) or 'novel'")
    parser.add_argument("--object-library", default="random_objects", choices=["random_objects", "blocks"],
                        help="the simulated objects: irregular random_urdfs meshes (default) or the seed's blocks")
    parser.add_argument("--exact-depth", action="store_true", help="exact depth instead of the D435-like noisy depth")
    parser.add_argument("--robot", default="ur5", help="'ur5' (the seed's sim) or 'ur3' (the real robot's twin)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in that folder")
    args = parser.parse_args(argv)
    out = Path(args.dataset)
    try:
        counts = parse_object_counts(args.objects)
        if (out / INDEX_FILE).exists() and not args.overwrite:
            raise DatasetError(f"{out} already holds a dataset; pass --overwrite to replace it (its annotations "
                               "would be lost)")
        # Imported here: loading MuJoCo takes a moment, and the argument errors above should not wait for it.
        from grasp_core.sim import make_keypoint_dataset

        make_keypoint_dataset(out, num_images=args.num_images, num_objects=counts, seed=args.seed,
                              click_noise_px=args.click_noise, object_set=args.object_set, robot=args.robot,
                              object_library=args.object_library, exact_depth=args.exact_depth)
        dataset = load_dataset(out)
    except ValueError as e:
        print(f"sim_keypoints: error: {e}", file=sys.stderr)
        return 2
    points = sum(len(s.points) for s in dataset.samples)
    print(f"wrote {len(dataset)} images with {points} key points to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
