"""A run's kept checkpoints, each greedy on the same fresh scenes (diagnosis --checkpoints), at CI size."""
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

from safetensors.numpy import load_file  # noqa: E402

from grasp_experiments.cli import main as experiments_main  # noqa: E402
from grasp_experiments.diagnosis import main as diagnosis_main  # noqa: E402
from grasp_experiments.runner import checkpoints_of  # noqa: E402


def test_checkpoints_are_kept_and_evaluated_on_the_same_scenes(tmp_path, capsys):
    out = tmp_path / "exp"
    assert experiments_main(["run", "--methods", "vanilla", "--objects", "3", "--seeds", "1", "--steps", "4",
                             "--profile", "tiny", "--jobs", "1", "--threads", "1", "--checkpoint-every", "2",
                             "--quiet", "--out", str(out)]) == 0
    run = out / "runs/vanilla/objects_03/seed_00"
    kept = checkpoints_of(run)
    assert sorted(kept) == [0, 2, 4]
    first, last, final = (load_file(kept[0]), load_file(kept[4]), load_file(run / "model.safetensors"))
    assert all((last[k] == final[k]).all() for k in final)  # the last checkpoint is the learner's final network
    assert any((first[k] != final[k]).any() for k in final)  # and the first one is from before learning

    result_path = tmp_path / "greedy.json"
    assert diagnosis_main(["--checkpoints", str(run), "--objects", "3", "--scenes", "2",
                           "--out", str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    assert result["attempts"] == [0, 2, 4] and len(result["mean"]) == 3
    for attempts in ("0", "2", "4"):
        counts = result["runs"][str(run)][attempts]["counts"]
        assert sum(counts.values()) == 2  # one greedy grasp on each of the 2 scenes
    assert result_path.with_suffix(".png").stat().st_size > 5_000

    assert diagnosis_main(["--checkpoints", str(tmp_path)]) == 2  # no checkpoints there
    assert "kept no checkpoints: run it with --checkpoint-every" in capsys.readouterr().err
