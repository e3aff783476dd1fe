"""The `grasp-pretrain` command line: parsed with the standard library only, so `--help` and a mistyped flag answer
at once; torch and the networks are imported after the arguments are known (see grasp_core.pretrain for the method).

    python -m grasp_core.pretrain --dataset DIR --out q_s.safetensors [--profile fast] [--epochs N] ...
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# The choices of --profile and --loss, spelled out so that building the parser imports no torch
# (src/grasp_core/test/test_pretrain_cli.py checks them against grasp_core.profiles.PROFILES and losses.LOSSES).
PROFILE_NAMES = ("fast", "fast_bilinear", "fast_mobilenet_v2", "paper", "poi", "tiny")
LOSS_NAMES = ("kl", "mse", "smooth_l1")
# PretrainConfig's defaults (same check).
DEFAULTS = {"epochs": 50, "batch_size": 4, "optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 2e-5}


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="grasp-pretrain", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Pretrain Q_s on key-point datasets (coarse affordance maps, KL loss).")
    parser.add_argument("--dataset", required=True, help="grasp-keypoints dataset folder")
    parser.add_argument("--out", required=True, help="checkpoint to write (.safetensors; a .json copy of the "
                                                     "metadata goes beside it)")
    parser.add_argument("--profile", default="fast", choices=PROFILE_NAMES,
                        help="network profile (grasp_core.profiles)")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help="passes over the dataset")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="images per SGD step")
    parser.add_argument("--loss", default="kl", choices=LOSS_NAMES, help="map loss (the seed: kl)")
    parser.add_argument("--optimizer", default=d["optimizer"], choices=("adam", "sgd"),
                        help="adam, or sgd (the seed, with --lr 1e-4); docs/learning.md compares them")
    parser.add_argument("--lr", type=float, default=d["lr"], help="learning rate (the seed: SGD at 1e-4)")
    parser.add_argument("--momentum", type=float, default=d["momentum"], help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="SGD weight decay")
    parser.add_argument("--no-augment", action="store_true", help="no random quarter turns / flips")
    parser.add_argument("--rotation-zero", action="store_true", help="train rotation 0 only (not random ones)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (initial weights, augmentation, rotations)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--logdir", help="TensorBoard log folder (scalars); none if omitted")
    parser.add_argument("--imagenet-weights", help="mobilenet_v2 ImageNet file for the poi profile")
    parser.add_argument("--init", help="start from this checkpoint instead of the profile's initial weights")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (it is off anyway when stderr is not a terminal)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.dataset).is_dir():
        print(f"grasp-pretrain: error: --dataset {args.dataset} is not a folder: give a grasp-keypoints dataset "
              "(make one with `python -m grasp_annotation.sim_keypoints DIR`, or capture + annotate)", file=sys.stderr)
        return 2
    if not args.out.endswith(".safetensors"):
        print(f"grasp-pretrain: error: --out must end in .safetensors, got {args.out}", file=sys.stderr)
        return 2

    from dataclasses import asdict  # noqa: PLC0415 - the heavy part starts here

    import torch  # noqa: PLC0415

    from grasp_core import checkpoint  # noqa: PLC0415
    from grasp_core.pretrain import PretrainConfig, pretrain_from_dataset  # noqa: PLC0415

    writer = None
    if args.logdir:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415
        writer = SummaryWriter(args.logdir)
    try:
        config = PretrainConfig(profile=args.profile, epochs=args.epochs, batch_size=args.batch_size, loss=args.loss,
                                optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, augment=not args.no_augment,
                                random_rotations=not args.rotation_zero, seed=args.seed)
        torch.set_num_threads(max(1, args.threads))
        trained = pretrain_from_dataset(args.dataset, config, imagenet_weights=args.imagenet_weights, init=args.init,
                                        writer=writer, progress=not args.quiet,
                                        log=lambda line: print(f"grasp-pretrain: {line}", flush=True))
    except (ValueError, FileNotFoundError) as e:
        print(f"grasp-pretrain: error: {e}", file=sys.stderr)
        return 2
    finally:
        if writer is not None:
            writer.close()
    epoch_losses = trained.result.epoch_losses
    meta = {"pretrain": asdict(config), "dataset": os.path.abspath(args.dataset), "images": trained.result.images,
            "heightmap_shape": list(trained.heightmap_shape), "resolution": trained.profile.resolution,
            "final_loss": epoch_losses[-1], "seconds": round(trained.seconds, 1), "init": args.init}
    out = trained.save(args.out, json.loads(json.dumps(meta)))
    print(f"grasp-pretrain: loss {epoch_losses[0]:.4f} -> {epoch_losses[-1]:.4f}; wrote {out} "
          f"and {checkpoint.sidecar_path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
