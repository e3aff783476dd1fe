"""Annotation sessions: edits, undo, autosave, exact round trips, and clear errors for bad datasets."""
import json
import os
import sys

import numpy as np
import pytest

from grasp_core.dataset import DatasetError, load_dataset, save_dataset

sys.path.insert(0, os.path.dirname(__file__))
from annotation_fixtures import make_dataset  # noqa: E402

from grasp_annotation.annotations import DEFAULT_SIGMA, AnnotationSession  # noqa: E402
from grasp_annotation.web import apply_edit, main as annotate_main  # noqa: E402


def _points(path, index):
    sample = load_dataset(path).samples[index]
    return sample.points.tolist(), sample.sigmas.tolist()


def test_every_edit_is_on_disk_when_it_returns_and_sigma_comes_from_depth(tmp_path):
    make_dataset(tmp_path / "d")
    session = AnnotationSession(tmp_path / "d")
    session.add(0, 15.5, 15.5)           # centre of the 12 x 12 box
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5]], [6.0])
    session.add(0, 49.3, 33.7)           # inside the 20 x 8 box: the inscribed radius is 4
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5], [49.3, 33.7]], [6.0, 4.0])
    session.move(0, 1, 50.0, 34.0)
    session.set_sigma(0, 0, 7.25)
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5], [50.0, 34.0]], [7.25, 4.0])
    session.delete(0, 0)
    assert _points(tmp_path / "d", 0) == ([[50.0, 34.0]], [4.0])
    # A click on the table keeps the click, with the default sigma and a note saying so.
    result = session.add(1, 70.0, 5.0)
    assert result.message and "no object" in result.message
    assert _points(tmp_path / "d", 1) == ([[70.0, 5.0]], [DEFAULT_SIGMA])
    # Undo walks back across samples, saving each step.
    session.undo()  # the table click on sample 1
    session.undo()  # the delete on sample 0
    assert _points(tmp_path / "d", 1) == ([], [])
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5], [50.0, 34.0]], [7.25, 4.0])
    assert session.revision == 8


def test_one_drag_or_scroll_gesture_is_one_undo_step(tmp_path):
    make_dataset(tmp_path / "d")
    session = AnnotationSession(tmp_path / "d")
    session.add(0, 15.5, 15.5)
    for sigma in (6.5, 7.0, 7.5, 8.0):
        session.set_sigma(0, 0, sigma, gesture="wheel-1")
    for u in (16, 17, 18):
        session.move(0, 0, u, 15.5, gesture="drag-1")
    assert _points(tmp_path / "d", 0) == ([[18.0, 15.5]], [8.0])
    session.undo()
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5]], [8.0])
    session.undo()
    assert _points(tmp_path / "d", 0) == ([[15.5, 15.5]], [6.0])
    session.undo()
    assert _points(tmp_path / "d", 0) == ([], [])
    with pytest.raises(ValueError, match="nothing to undo"):
        session.undo()


def test_saved_reloaded_and_resaved_annotations_are_identical(tmp_path):
    make_dataset(tmp_path / "d", num_samples=4)
    session = AnnotationSession(tmp_path / "d")
    rng = np.random.default_rng(1)
    clicks = []
    for i in range(4):
        for u, v in zip(rng.uniform(0, 79, 3), rng.uniform(0, 63, 3)):
            session.add(i, u, v, sigma=float(rng.uniform(1, 20)))
            clicks.append((i, round(u, 2), round(v, 2)))
    first = (tmp_path / "d" / "dataset.json").read_bytes()
    reloaded = load_dataset(tmp_path / "d")
    for i, u, v in clicks:
        assert [u, v] in reloaded.samples[i].points.tolist()
    # Re-saved by a new session: the same bytes.
    again = AnnotationSession(tmp_path / "d")
    again.save()
    assert (tmp_path / "d" / "dataset.json").read_bytes() == first
    # Re-saved by grasp_core.dataset itself: the same bytes, so the tool writes exactly the library's format.
    save_dataset(tmp_path / "copy", reloaded.samples, reloaded.workspace, reloaded.camera)
    assert (tmp_path / "copy" / "dataset.json").read_bytes() == first
    copy = load_dataset(tmp_path / "copy")
    for a, b in zip(reloaded.samples, copy.samples):
        assert np.array_equal(a.points, b.points) and np.array_equal(a.sigmas, b.sigmas)
        assert np.array_equal(a.color, b.color) and np.array_equal(a.depth, b.depth)


def test_bad_edits_are_refused_with_a_reason_and_change_nothing(tmp_path):
    make_dataset(tmp_path / "d")
    session = AnnotationSession(tmp_path / "d")
    before = (tmp_path / "d" / "dataset.json").read_bytes()
    bad = [({"op": "add", "sample": 7, "u": 1, "v": 1}, "sample index"),
           ({"op": "add", "sample": 0, "u": 200, "v": 1}, "outside"),
           ({"op": "add", "sample": 0, "u": "x", "v": 1}, "numbers"),
           ({"op": "add", "sample": 0, "u": 15, "v": 15, "sigma": 0.1}, "sigma"),
           ({"op": "sigma", "sample": 0, "point": 0, "sigma": 3}, "no point"),
           ({"op": "delete", "sample": 0, "point": True}, "no point"),
           ({"op": "paint"}, "unknown edit op")]
    for edit, reason in bad:
        with pytest.raises(ValueError, match=reason):
            apply_edit(session, edit)
    assert (tmp_path / "d" / "dataset.json").read_bytes() == before
    assert session.revision == 0


def test_a_dataset_changed_behind_the_tools_back_is_not_overwritten(tmp_path):
    make_dataset(tmp_path / "d", num_samples=2)
    session = AnnotationSession(tmp_path / "d")
    make_dataset(tmp_path / "other", num_samples=3)
    os.replace(tmp_path / "other" / "dataset.json", tmp_path / "d" / "dataset.json")
    with pytest.raises(DatasetError, match="changed on disk"):
        session.add(0, 15, 15)


@pytest.mark.parametrize("content, message", [
    ("{not json", "corrupt"),
    (json.dumps({"info": {}, "images": [], "annotations": []}), "not a grasp-keypoints dataset"),
    (json.dumps({"format": "grasp-keypoints", "version": 2, "samples": []}), "version 2"),
])
def test_corrupt_or_foreign_datasets_get_a_clear_error(tmp_path, capsys, content, message):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "dataset.json").write_text(content)
    with pytest.raises(DatasetError, match=message):
        AnnotationSession(folder)
    assert annotate_main([str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("annotate: error:") and message in err and "Traceback" not in err
    assert (folder / "dataset.json").read_text() == content  # untouched


def test_a_folder_without_a_dataset_or_with_missing_images_is_refused(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    assert annotate_main([str(tmp_path / "photos"), "--port", "0"]) == 2
    assert "dataset.json is missing" in capsys.readouterr().err
    make_dataset(tmp_path / "d", num_samples=2)
    os.remove(tmp_path / "d" / "images" / "000001_depth.npy")
    assert annotate_main([str(tmp_path / "d"), "--port", "0"]) == 2
    assert "000001_depth.npy is missing" in capsys.readouterr().err


def test_pretraining_runs_straight_from_an_annotated_dataset(tmp_path):
    from grasp_core.pretrain import main as pretrain_main

    make_dataset(tmp_path / "d", num_samples=3)
    session = AnnotationSession(tmp_path / "d")
    session.add(0, 15.5, 15.5)
    session.add(0, 50, 34)
    session.add(1, 15.5, 15.5)      # sample 2 stays unannotated: pretraining leaves it out of KL
    out = tmp_path / "q_s.safetensors"
    assert pretrain_main(["--dataset", str(tmp_path / "d"), "--out", str(out), "--profile", "tiny",
                          "--epochs", "1", "--no-augment", "--quiet"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert out.stat().st_size > 1000 and meta["config"]["images"] == 2
