"""grasp_interfaces/GraspExperience -> grasp_core Experience (the learner's only message conversion)."""
from __future__ import annotations

from grasp_interfaces.msg import GraspExperience

from grasp_core.replay import Experience
from grasp_ros.conversions import check_heightmap_size, is_empty_heightmap, msg_to_heightmap


def msg_to_experience(msg: GraspExperience, max_pixels: int | None = None) -> Experience:
    """Decode and check one experience; raises ValueError saying what is wrong (the learner logs and drops it).
    `max_pixels`: heightmaps larger than that are refused before they are decoded."""
    if not msg.id:
        raise ValueError("experience has an empty id")
    if max_pixels is not None:
        for name, heightmap in (("heightmap", msg.heightmap), ("next heightmap", msg.next_heightmap)):
            try:
                check_heightmap_size(heightmap, max_pixels)
            except ValueError as e:
                raise ValueError(f"experience {msg.id}: {name}: {e}") from None
    try:
        color, depth, _ = msg_to_heightmap(msg.heightmap)
    except ValueError as e:
        raise ValueError(f"experience {msg.id}: bad heightmap: {e}") from None
    next_color = next_depth = None
    if not msg.terminal:
        if is_empty_heightmap(msg.next_heightmap):
            raise ValueError(f"experience {msg.id}: not terminal but next_heightmap is empty")
        try:
            next_color, next_depth, _ = msg_to_heightmap(msg.next_heightmap)
        except ValueError as e:
            raise ValueError(f"experience {msg.id}: bad next heightmap: {e}") from None
    return Experience(id=msg.id, source=msg.source, attempt=int(msg.attempt), color_hm=color, depth_hm=depth,
                      rotation_index=int(msg.rotation_index), num_rotations=int(msg.num_rotations),
                      pixel=(int(msg.pixel_x), int(msg.pixel_y)), reward=float(msg.reward), terminal=bool(msg.terminal),
                      next_color_hm=next_color, next_depth_hm=next_depth, model_version=int(msg.model_version),
                      epsilon=float(msg.epsilon), explored=bool(msg.explored), predicted_q=float(msg.predicted_q),
                      failure_reason=int(msg.failure_reason))
