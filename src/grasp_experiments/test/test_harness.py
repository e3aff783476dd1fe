"""The harness end to end at CI size (tiny profile, few steps): run, resume, novel test, report.

One experiment folder is shared by the tests of this module (module-scoped fixture) to stay CI-sized.
"""
import json
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from grasp_core.metrics import windowed_success  # noqa: E402

from grasp_experiments.cli import main  # noqa: E402
from grasp_core.attempts import read_attempts  # noqa: E402

STEPS = 6
RUN_ARGS = ["run", "--methods", "ours", "vanilla", "mog", "--objects", "3", "--seeds", "2", "--steps", str(STEPS),
            "--profile", "tiny", "--jobs", "1", "--threads", "1", "--pretrain-images", "4", "--pretrain-epochs", "1",
            "--quiet"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    assert main(RUN_ARGS + ["--out", str(out)]) == 0
    return out


def _run_dirs(out):
    return sorted((out / "runs").glob("*/objects_*/seed_*"))


def test_run_writes_raw_logs_and_models(experiment):
    runs = _run_dirs(experiment)
    assert [str(r.relative_to(experiment / "runs")) for r in runs] == [
        f"{m}/objects_03/seed_{s:02d}" for m in ("mog", "ours", "vanilla") for s in (0, 1)]
    for run in runs:
        attempts = read_attempts(run)
        assert [a["step"] for a in attempts] == list(range(STEPS))
        assert all(a["success"] in (0, 1) and 0 <= a["rotation"] < 4 for a in attempts)
        assert all(0 <= a["u"] < 64 and 0 <= a["v"] < 64 for a in attempts)
        done = json.loads((run / "done.json").read_text())
        assert done["steps"] == STEPS and done["successes"] == sum(a["success"] for a in attempts)
        assert (run / "model.safetensors").is_file() and (run / "attempts.csv").is_file()
        # the model records the action space its run chose in, and /propose_grasp serves it so (issue 23)
        assert json.loads((run / "model.json").read_text())["action_space"] == \
            json.loads((run / "spec.json").read_text())["learning"]["actions"]
        assert not (run / "replay").exists()  # removed once finished (no --keep-replay)
        csv_rows = (run / "attempts.csv").read_text().strip().splitlines()
        assert len(csv_rows) == STEPS + 1
    mog = read_attempts(experiment / "runs/mog/objects_03/seed_00")
    assert all(a["roi_pixels"] is not None for a in mog)  # the MoG runs logged their regions of interest
    assert all(a["roi_pixels"] is None for a in read_attempts(experiment / "runs/vanilla/objects_03/seed_00"))
    # the same seed gives the same scenes for every method: the first heightmap is shared, so the first
    # exploration-free choice differs only through the network
    stage = experiment / "pretrained" / "tiny"
    for loss in ("kl", "mse", "smooth_l1"):
        assert (stage / f"qs_{loss}.safetensors").is_file() and (stage / f"map_{loss}.npy").is_file()
    spec = json.loads((experiment / "runs/ours/objects_03/seed_00/spec.json").read_text())
    assert spec["pretrained"].endswith("qs_kl.safetensors")


def test_rerun_skips_finished_and_restarts_interrupted(experiment, capsys):
    finished = experiment / "runs/vanilla/objects_03/seed_00"
    interrupted = experiment / "runs/ours/objects_03/seed_01"
    stamp = (finished / "done.json").stat().st_mtime_ns
    # simulate a crash mid-run: no done.json, a truncated log and a leftover replay folder
    (interrupted / "done.json").unlink()
    lines = (interrupted / "attempts.jsonl").read_text().splitlines()
    (interrupted / "attempts.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (interrupted / "replay").mkdir()
    assert main(RUN_ARGS + ["--out", str(experiment)]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) done, 5 skipped" in out
    assert (finished / "done.json").stat().st_mtime_ns == stamp  # untouched
    assert len(read_attempts(interrupted)) == STEPS and (interrupted / "done.json").is_file()
    assert not (interrupted / "replay").exists()
    history = [json.loads(x) for x in (experiment / "history.jsonl").read_text().splitlines()]
    assert [h["ran"] for h in history] == [6, 1] and [h["skipped"] for h in history] == [0, 5]
    # other settings for the same folder are refused instead of mixing results
    assert main([*RUN_ARGS[:RUN_ARGS.index("--steps")], "--steps", str(STEPS + 1),
                 *RUN_ARGS[RUN_ARGS.index("--steps") + 2:], "--out", str(experiment)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_novel_and_report_match_raw_logs(experiment, tmp_path):
    assert main(["novel", "--runs", str(experiment), "--rounds", "2", "--attempts", "3", "--threads", "1",
                 "--quiet"]) == 0
    novel = json.loads((experiment / "novel.json").read_text())
    assert set(novel["methods"]) == {"ours", "vanilla", "mog"}
    for result in novel["methods"].values():
        assert len(result["rounds"]) == 2 and all(g in (0, 1 / 3, 2 / 3, 1) for g in result["rounds"])
        assert result["mean"] == pytest.approx(np.mean(result["rounds"]))
        # greedy grasps are chosen as the runs chose them (their learning settings, here the default preset)
        assert result["learning"] == "default" and result["actions"]["object_mask"] is True
    # testing one method again keeps the others, and the same scenes and models give the same result
    assert main(["novel", "--runs", str(experiment), "--methods", "ours", "--rounds", "2", "--attempts", "3",
                 "--threads", "1", "--include-pretrained", "--quiet"]) == 0
    again = json.loads((experiment / "novel.json").read_text())
    assert set(again["methods"]) == {"ours", "vanilla", "mog", "pretrained_qs"}
    assert again["methods"]["pretrained_qs"]["models"] == ["pretrained/tiny/qs_kl.safetensors"]
    assert again["methods"]["ours"]["rounds"] == novel["methods"]["ours"]["rounds"]
    out = tmp_path / "report"
    assert main(["report", "--runs", str(experiment), "--out", str(out), "--window", "3", "--box", "3",
                 "--k", "1", "--title", "CI report"]) == 0
    for name in ("report.md", "summary.json", "summary.csv", "fig3_loss_comparison.png", "fig5_ours_vs_vanilla.png",
                 "fig6_cs_histograms.png", "fig7_method_comparison.png", "table2_novel_objects.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert report.startswith("# CI report") and "Profile **tiny**" in report
    summary = json.loads((out / "summary.json").read_text())
    for cell in summary["cells"]:
        runs = [read_attempts(experiment / f"runs/{cell['method']}/objects_03/seed_{s:02d}") for s in (0, 1)]
        successes = [np.array([a["success"] for a in r]) for r in runs]
        assert cell["success_rate"] == pytest.approx(np.mean([s.mean() for s in successes]), abs=1e-4)
        final = [windowed_success(s, 3)[-1] for s in successes]
        assert cell["final_g_per_seed"] == pytest.approx(final, abs=1e-4)
        boxes = np.mean([s.reshape(2, 3).mean(1) for s in successes], axis=0)
        assert cell["gbar"] == pytest.approx(boxes[-1], abs=1e-4)  # k = 1: the last box
        # the report's table prints the same numbers
        assert f"| 3 | {cell['method']} | 2 |" in report
        assert f"{cell['success_rate']:.3f} | {cell['gbar']:.2f}" in report
    for method, result in again["methods"].items():
        assert f"{result['mean']:.3f} ± {result['std']:.3f}" in report
    assert "*seed: ours* | *2.63*" not in report  # the seed's Table I has no 3-object row
