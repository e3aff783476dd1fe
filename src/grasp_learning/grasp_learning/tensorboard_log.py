"""TensorBoard of the learner: `tensorboard --logdir <run folder>/tensorboard`.

Scalars per DQN update (x = update step): `loss/update`, `td_error/update` (target - Q before the step),
`q/predicted` and `q/target`; per stored experience (x = experiences stored): `G/window` (successes over the last
`window` experiences), `epsilon/experience` and `reward/experience`; every `image_every` updates: the Q scale of
the experience's heightmap (`q/map_max`, `q/map_mean` over all rotations) and an image `affordance/best_rotation`:
the colour heightmap beside the Q map of its best rotation (jet colours, 0 -> blue, >= 1 -> red) with the tried
pixel marked.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np


def affordance_panel(color_hm: np.ndarray, q_map: np.ndarray, pixel: tuple[int, int]) -> np.ndarray:
    """(H, 2W, 3) uint8 RGB: the colour heightmap and the Q map (clipped to [0, 1], jet) with `pixel` circled."""
    import cv2  # noqa: PLC0415

    q = np.clip(np.nan_to_num(q_map.astype(np.float32)), 0.0, 1.0)
    heat = cv2.applyColorMap((q * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]  # BGR -> RGB
    panel = np.concatenate([np.ascontiguousarray(color_hm, dtype=np.uint8), heat], axis=1).copy()
    u, v = int(pixel[0]), int(pixel[1])
    w = color_hm.shape[1]
    for offset in (0, w):
        cv2.circle(panel, (u + offset, v), max(2, w // 40), (255, 255, 255), 1)
    return panel


class LearnerTensorBoard:
    """Writes the learner's curves and images into `logdir` (a SummaryWriter from torch.utils.tensorboard)."""

    def __init__(self, logdir, image_every: int = 50, window: int = 100):
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

        if image_every < 1 or window < 1:
            raise ValueError(f"image_every and window must be >= 1, got {image_every} and {window}")
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.logdir))
        self.image_every, self.window = int(image_every), int(window)
        self._rewards: deque[float] = deque(maxlen=self.window)
        self.experiences = 0

    def on_experience(self, reward: float, epsilon: float) -> None:
        self.experiences += 1
        self._rewards.append(1.0 if reward > 0.5 else 0.0)
        n = self.experiences
        self.writer.add_scalar("G/window", float(np.mean(self._rewards)), n)
        self.writer.add_scalar("epsilon/experience", float(epsilon), n)
        self.writer.add_scalar("reward/experience", float(reward), n)

    def after_update(self, stats, experience=None, qnet=None) -> None:
        """`stats`: grasp_core.dqn.UpdateStats; `experience` + `qnet`: for the image every `image_every` updates."""
        step = int(stats.step)
        self.writer.add_scalar("loss/update", float(stats.loss), step)
        self.writer.add_scalar("td_error/update", float(stats.target - stats.predicted), step)
        self.writer.add_scalar("q/predicted", float(stats.predicted), step)
        self.writer.add_scalar("q/target", float(stats.target), step)
        if experience is not None and qnet is not None and step % self.image_every == 0:
            q = qnet.predict(experience.color_hm, experience.depth_hm)  # (R, H, W), eval mode, restores train
            self.writer.add_scalar("q/map_max", float(q.max()), step)
            self.writer.add_scalar("q/map_mean", float(q.mean()), step)
            best = int(np.unravel_index(int(np.argmax(q)), q.shape)[0])
            panel = affordance_panel(experience.color_hm, q[best], experience.pixel)
            self.writer.add_image("affordance/best_rotation", panel, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
