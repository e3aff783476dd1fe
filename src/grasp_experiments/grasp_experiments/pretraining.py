"""The pretraining stage of an experiment: the sim key-point set, Q_s for `ours`, and the seed's Fig. 3.

Everything lands in `<experiment>/pretrained/<profile>/`; each piece is made once and marked finished by a JSON
file written last (a piece interrupted half-way is redone):
    dataset/, heldout/           grasp-keypoints v1: `num_images` random train-set scenes (1-10 objects) with
                                 their key points, and one more 6-object scene (another seed) for Fig. 3
    data.json                    the stage settings and how long the datasets took
    qs_<loss>.safetensors        Q_s pretrained with `loss` (kl: the one `ours` warm-starts from; mse and
                                 smooth_l1 with `loss_comparison`, for Fig. 3 only)
    map_<loss>.npy               that Q_s's map of the held-out scene (rotation 0), in [0, 1]
    loss_<loss>.json             per-epoch losses, steps, seconds
The losses are separate tasks, so the experiment can run the comparison ones beside the learning runs.

BatchNorm statistics are re-estimated after training by grasp_core.pretrain (`recalibrate_bn`: without it a
short-pretrained fast-profile Q_s is flat in eval mode), and a KL Q_s gets its output scale calibrated there
(`calibrate_q`, the pretrain module's default).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from grasp_core.dataset import load_dataset
from grasp_core.networks import heightmaps_to_tensors
from grasp_core.pretrain import PretrainConfig, prepare_images, pretrain_from_dataset
from grasp_core.profiles import get_profile

DATA_FILE = "data.json"


@dataclass(frozen=True)
class PretrainStage:
    profile: str
    num_images: int = 50  # the seed's sim set
    epochs: int = 50
    batch_size: int = 4
    optimizer: str = "adam"  # grasp_core.pretrain.PretrainConfig (the seed: sgd, lr 1e-4)
    lr: float = 1e-3
    dataset_seed: int = 0
    heldout_seed: int = 10_000
    loss_comparison: bool = True  # also train MSE and smooth L1 (Fig. 3)
    recalibrate_bn: bool = True  # re-estimate BatchNorm running statistics after training (see below)
    object_library: str = "random_objects"  # the world the key-point images are rendered in
    exact_depth: bool = False  # ... and its camera without the D435-like depth noise

    def __post_init__(self) -> None:
        get_profile(self.profile)
        if self.num_images < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"num_images, epochs and batch_size must be >= 1, got {self}")

    def data_key(self) -> dict:
        """What defines the rendered key-point data (the losses trained on it may be added later)."""
        return {"profile": self.profile, "num_images": self.num_images, "dataset_seed": self.dataset_seed,
                "heldout_seed": self.heldout_seed, "object_library": self.object_library,
                "exact_depth": self.exact_depth}

    def training_key(self) -> dict:
        """What defines one loss's Q_s besides the loss itself."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "recalibrate_bn": self.recalibrate_bn,
                "optimizer": self.optimizer, "lr": self.lr}

    @property
    def losses(self) -> tuple[str, ...]:
        return ("kl", "mse", "smooth_l1") if self.loss_comparison else ("kl",)


def stage_dir(experiment_dir: str | Path, profile: str) -> Path:
    return Path(experiment_dir) / "pretrained" / profile


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)


def loss_marker(experiment_dir: str | Path, profile: str, loss: str) -> Path:
    """loss_<loss>.json, written last: that loss's Q_s is finished iff it exists."""
    return stage_dir(experiment_dir, profile) / f"loss_{loss}.json"


def loss_done(experiment_dir: str | Path, profile: str, loss: str) -> bool:
    return loss_marker(experiment_dir, profile, loss).is_file()


def kl_checkpoint(experiment_dir: str | Path, profile: str) -> Path:
    """The finished Q_s checkpoint `ours` warm-starts from; raises if it has not been made."""
    if not loss_done(experiment_dir, profile, "kl"):
        raise ValueError(f"KL pretraining for profile {profile} has not finished in {experiment_dir}")
    return stage_dir(experiment_dir, profile) / "qs_kl.safetensors"


def prepare_data(experiment_dir: str | Path, stage: PretrainStage, progress: bool = True) -> Path:
    """Render the key-point set and the held-out scene (once); returns the stage directory."""
    from grasp_core.sim import make_keypoint_dataset

    directory = stage_dir(experiment_dir, stage.profile)
    if (directory / DATA_FILE).is_file():
        recorded = json.loads((directory / DATA_FILE).read_text())["data"]
        if recorded != stage.data_key():
            raise ValueError(f"{directory} holds key-point data made with other settings ({recorded}, asked "
                             f"{stage.data_key()}); use another experiment folder or delete it")
        return directory
    if directory.exists():
        shutil.rmtree(directory)  # interrupted: start the stage again
    directory.mkdir(parents=True)
    started = time.perf_counter()
    world = {"object_library": stage.object_library, "exact_depth": stage.exact_depth}
    make_keypoint_dataset(directory / "dataset", num_images=stage.num_images, seed=stage.dataset_seed,
                          show_progress=progress, **world)
    make_keypoint_dataset(directory / "heldout", num_images=1, num_objects=(6,), seed=stage.heldout_seed,
                          show_progress=False, **world)
    _write_json(directory / DATA_FILE, {"data": stage.data_key(), "seconds": round(time.perf_counter() - started, 1)})
    return directory


def heldout_image(experiment_dir: str | Path, profile: str):
    """The held-out scene at the profile's resolution (colour, depth, label) as a pretrain.TrainingImage."""
    directory = stage_dir(experiment_dir, profile)
    heldout = load_dataset(directory / "heldout")
    return prepare_images(heldout.samples, heldout.workspace.resolution / get_profile(profile).resolution)[0]


def _normalise(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1], as the seed's Fig. 3 ("all values are normalized to [0, 1]")."""
    span = float(values.max() - values.min())
    return ((values - values.min()) / span if span > 0 else np.zeros_like(values)).astype(np.float32)


def predicted_map(qnet, color_hm: np.ndarray, depth_hm: np.ndarray, loss: str) -> np.ndarray:
    """Q_s's map (rotation 0) in [0, 1]: softmax over pixels for KL (a distribution), raw output otherwise."""
    color, depth = heightmaps_to_tensors(color_hm, depth_hm)
    qnet.eval()
    with torch.no_grad():
        logits = qnet(color, depth, [0])[0].double()
    values = torch.softmax(logits.flatten(), 0).reshape(logits.shape) if loss == "kl" else logits
    return _normalise(values.numpy())


def pretrain_loss(experiment_dir: str | Path, stage: PretrainStage, loss: str, threads: int = 1,
                  progress: bool = False) -> dict:
    """Train Q_s with one loss on the stage's data (prepare_data first); returns the loss_<loss>.json record."""
    directory = stage_dir(experiment_dir, stage.profile)
    marker = loss_marker(experiment_dir, stage.profile, loss)
    if marker.is_file():
        record = json.loads(marker.read_text())
        if record["training"] != stage.training_key():
            raise ValueError(f"{marker} was trained with {record['training']}, asked {stage.training_key()}: use "
                             "another experiment folder or delete it")
        return record
    if not (directory / DATA_FILE).is_file():
        raise ValueError(f"no key-point data in {directory}: run prepare_data first")
    torch.set_num_threads(max(1, int(threads)))
    config = PretrainConfig(profile=stage.profile, epochs=stage.epochs, batch_size=stage.batch_size, loss=loss,
                            optimizer=stage.optimizer, lr=stage.lr, recalibrate_bn=stage.recalibrate_bn,
                            seed=stage.dataset_seed)
    trained = pretrain_from_dataset(directory / "dataset", config, progress=progress)  # BatchNorm re-estimated
    qnet, result, seconds = trained.qnet, trained.result, trained.seconds
    qnet.eval()
    trained.save(directory / f"qs_{loss}.safetensors", asdict(config))
    test = heldout_image(experiment_dir, stage.profile)
    np.save(directory / f"map_{loss}.npy", predicted_map(qnet, test.color, test.depth, loss))
    record = {"loss": loss, "training": stage.training_key(), "config": asdict(config),
              "epoch_losses": result.epoch_losses, "steps": result.steps,
              "images": result.images, "seconds": round(seconds, 1), "threads": threads,
              "recalibrated_bn": stage.recalibrate_bn}
    _write_json(marker, record)
    return record


def load_comparison(experiment_dir: str | Path, profile: str) -> tuple[dict, dict] | None:
    """(maps, records) of the finished losses: maps has color, depth, label and pred_<loss>; None if none."""
    directory = stage_dir(experiment_dir, profile)
    records = {loss: json.loads((directory / f"loss_{loss}.json").read_text())
               for loss in ("kl", "mse", "smooth_l1") if (directory / f"loss_{loss}.json").is_file()}
    if not records:
        return None
    test = heldout_image(experiment_dir, profile)
    maps = {"color": test.color, "depth": test.depth, "label": test.label}
    maps.update({f"pred_{loss}": np.load(directory / f"map_{loss}.npy") for loss in records})
    return maps, records
