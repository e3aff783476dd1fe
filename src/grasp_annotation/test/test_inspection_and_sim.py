"""Dataset inspection (problems, contact sheet) and the simulator's auto-annotated set."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from grasp_core.dataset import KeypointSample, load_dataset, save_dataset

sys.path.insert(0, os.path.dirname(__file__))
from annotation_fixtures import WORKSPACE, make_dataset, scene  # noqa: E402

from grasp_annotation.inspection import contact_sheet, find_problems, main as inspect_main  # noqa: E402
from grasp_annotation.overlay import PROBLEM_COLOR, blend, label_rgba  # noqa: E402
from grasp_annotation.sim_keypoints import main as sim_main, parse_object_counts  # noqa: E402


def _flawed_dataset(path):
    """Sample 0 is clean; 1 has no points; 2 a point on the table; 3 a sigma far larger than its box (most of
    its Gaussian lies on the table); 4 an empty depth heightmap."""
    color, depth = scene()
    good = ([[15.5, 15.5], [49.5, 33.5]], [6.0, 4.0])
    specs = [good, ([], []), ([[15.5, 15.5], [70.0, 55.0]], [6.0, 5.0]),
             ([[15.5, 15.5], [49.5, 33.5]], [6.0, 60.0]), ([[15.5, 15.5]], [6.0])]
    samples = []
    for i, (points, sigmas) in enumerate(specs):
        d = np.zeros_like(depth) if i == 4 else depth
        samples.append(KeypointSample(f"{i:06d}", color, d, np.array(points, float).reshape(-1, 2), sigmas))
    return save_dataset(path, samples, WORKSPACE)


def test_problems_are_found_where_they_are_and_nowhere_else(tmp_path):
    dataset = load_dataset(_flawed_dataset(tmp_path / "d"))
    found = {(p.sample, p.kind, p.point) for p in find_problems(dataset)}
    assert found == {("000001", "no points", None),
                     ("000002", "point off object", 1), ("000002", "sigma covers nothing", 1),
                     ("000003", "sigma covers nothing", 1),
                     ("000004", "empty depth", None), ("000004", "point off object", 0),
                     ("000004", "sigma covers nothing", 0)}
    clean = load_dataset(make_dataset(tmp_path / "clean", annotated=True))
    assert find_problems(clean) == []


def test_contact_sheet_shows_every_image_with_its_label_and_frames_problem_images(tmp_path):
    dataset = load_dataset(_flawed_dataset(tmp_path / "d"))
    sheet = contact_sheet(dataset, find_problems(dataset), columns=3, scale=2.0)
    cell_w, cell_h = 160 + 6, 128 + 22 + 6
    assert sheet.shape == (2 * cell_h + 6, 3 * cell_w + 6, 3)

    def tile(i):
        top, left = 6 + (i // 3) * cell_h, 6 + (i % 3) * cell_w
        return sheet[top:top + 128, left:left + 160]

    # The label overlay tints the annotated box, not the same box in the image without points.
    overlay = label_rgba((64, 80), dataset[0].points, dataset[0].sigmas)
    assert overlay[17, 13, 3] > 50  # the label is well above 0 there
    shown, raw = tile(0)[35, 27], dataset[0].color[17, 13]
    assert np.array_equal(shown, blend(dataset[0].color, overlay)[17, 13])
    assert np.abs(shown.astype(int) - raw).sum() > 40, (shown, raw)
    assert np.array_equal(tile(1)[35, 27], cv2.resize(dataset[1].color, None, fx=2, fy=2,
                                                      interpolation=cv2.INTER_NEAREST)[35, 27])
    red = np.all(sheet == PROBLEM_COLOR, axis=2)

    def frame_row(i):  # the red frame's top edge, 2 px above the tile
        top, left = 6 + (i // 3) * cell_h, 6 + (i % 3) * cell_w
        return red[top - 2, left:left + 160]

    assert not frame_row(0).any() and all(frame_row(i).all() for i in (1, 2, 3, 4))


def test_inspect_command_writes_the_sheet_and_sets_its_exit_code(tmp_path, capsys):
    _flawed_dataset(tmp_path / "d")
    assert inspect_main([str(tmp_path / "d"), "--sheet", str(tmp_path / "sheet.png")]) == 1
    out = capsys.readouterr().out
    assert "7 problems found" in out and "000002 point 2: point off object" in out
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[1] == 5 * (80 + 6) + 6
    make_dataset(tmp_path / "clean", annotated=True)
    assert inspect_main([str(tmp_path / "clean")]) == 0
    assert "0 problems" in capsys.readouterr().out
    assert (tmp_path / "clean" / "contact_sheet.png").is_file()
    assert load_dataset(tmp_path / "clean").samples[0].points.shape == (2, 2)  # still a readable dataset
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "dataset.json").write_text(json.dumps({"format": "coco", "version": 1}))
    assert inspect_main([str(tmp_path / "foreign")]) == 2
    err = capsys.readouterr().err
    assert "inspect_dataset: error:" in err and "not a grasp-keypoints dataset (format: 'coco')" in err


def test_sim_keypoints_builds_an_annotated_dataset_and_never_overwrites_one_by_accident(tmp_path, capsys):
    out = tmp_path / "sim"
    assert sim_main([str(out), "--num-images", "2", "--objects", "2-3", "--seed", "4", "--click-noise", "1.5"]) == 0
    dataset = load_dataset(out)
    assert len(dataset) == 2 and dataset.camera["click_noise_px"] == 1.5
    for sample in dataset.samples:
        assert 2 <= len(sample.points) <= 3
        # Ground-truth clicks land on the objects (1.5 px noise on objects ~10 px across).
        on_object = [sample.depth[int(v), int(u)] > 0.005 for u, v in sample.points]
        assert sum(on_object) >= len(on_object) - 1
    before = (out / "dataset.json").read_bytes()
    assert sim_main([str(out), "--num-images", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "dataset.json").read_bytes() == before
    assert parse_object_counts("1-10") == list(range(1, 11)) and parse_object_counts("2,4,6") == [2, 4, 6]
    with pytest.raises(ValueError, match="like 4, 1-10"):
        parse_object_counts("many")
