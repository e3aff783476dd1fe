"""Where a learning run's grasps failed, per window of its attempt log."""
import json

import pytest

from grasp_experiments.diagnosis import main, window_breakdown


def attempt(success, on_object=True, keypoint_mm=5.0):
    return {"success": int(success), "on_object": on_object, "keypoint_mm": keypoint_mm}


def test_failures_are_split_by_where_they_happened():
    log = [attempt(1), attempt(0, on_object=False, keypoint_mm=40.0), attempt(0, keypoint_mm=20.0), attempt(0),
           attempt(1), attempt(0, keypoint_mm=None)]
    rows = window_breakdown(log, window=4)
    assert rows == [{"first": 1, "last": 4, "success": 1, "off_object": 1, "far": 1, "near": 1},
                    {"first": 5, "last": 6, "success": 1, "off_object": 0, "far": 0, "near": 1}]
    with pytest.raises(ValueError, match="window"):
        window_breakdown(log, window=0)


def test_the_command_sums_runs_and_refuses_a_folder_without_a_log(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "attempts.jsonl").write_text("\n".join(json.dumps(attempt(k % 2)) for k in range(4)))
    out = tmp_path / "w.json"
    assert main(["--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--window", "2", "--out", str(out)]) == 0
    assert [w["success"] for w in json.loads(out.read_text())["windows"]] == [2, 2]
    assert main(["--runs", str(tmp_path)]) == 2
    assert "not a learning run folder" in capsys.readouterr().err
