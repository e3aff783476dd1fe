"""The objects to grasp, in two libraries, each with a training split and a held-out novel split.

- `random_objects` (the default world): the 1000 procedurally generated objects of pybullet_data/random_urdfs
  (Quillen et al. 2018), irregular unions of convex parts, about 30 x 90 x 120 mm; ids ending in 0 are the 100
  novel ones. Vendored as hull vertices in data/random_objects.npz (zlib licence, data/LICENSE-pybullet_data.txt;
  scripts/extract_random_objects.py rebuilds it); 5 degenerate objects are left out with their reasons.
- `blocks` (the seed's world): 9 primitive block types for training and 10 unseen shapes for the novel test. Each
  is a generator `rng -> geoms` giving random sizes in a range an RG2-like jaw (110 mm stroke) can grasp: every
  object has a horizontal width of 15-80 mm across some direction and is 15-60 mm tall.

Bodies are centred on their bounding box, so the body origin is the object's geometric centre. Convex parts
become MuJoCo meshes given by their vertices (no files); non-convex shapes are unions of convex parts. MuJoCo
derives mass and inertia from OBJECT_DENSITY (random_urdfs' own masses are placeholders).
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Callable

import numpy as np

# Object material: a light wood/plastic. MuJoCo derives each body's mass and inertia from it.
OBJECT_DENSITY = 500.0  # kg / m^3


@dataclass(frozen=True)
class GeomSpec:
    """One convex part of an object, in the object's body frame.

    kind: 'box' | 'cylinder' | 'sphere' | 'capsule' | 'ellipsoid' (MuJoCo `size` semantics), 'prism':
    the polygon (x, y) vertices extruded along z over [-size[0], size[0]], or 'mesh': the convex hull of
    `vertices` (MuJoCo hulls a mesh given by vertices alone).
    """

    kind: str
    size: tuple[float, ...]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z (MuJoCo order)
    polygon: tuple[tuple[float, float], ...] | None = None
    vertices: np.ndarray | None = field(default=None, compare=False, repr=False)  # kind 'mesh': (N, 3) hull


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene: unique name, shape type, parts, colour and surface sample points (body frame)."""

    name: str
    shape: str
    geoms: tuple[GeomSpec, ...]
    rgba: tuple[float, float, float, float]
    points: np.ndarray = field(repr=False, compare=False)
    parts: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)  # `points` of each geom

    @property
    def bounding_radius(self) -> float:
        """Radius of the sphere about the body origin that contains the object (any orientation)."""
        return float(np.max(np.linalg.norm(self.points, axis=1)))


# ---------------------------------------------------------------------------------------------- geometry helpers
def _quat_about(axis: str, angle: float) -> tuple[float, float, float, float]:
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    return {"x": (c, s, 0.0, 0.0), "y": (c, 0.0, s, 0.0), "z": (c, 0.0, 0.0, s)}[axis]


def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def regular_polygon(num_sides: int, circumradius: float, phase: float = 0.0) -> tuple[tuple[float, float], ...]:
    angles = phase + 2 * math.pi * np.arange(num_sides) / num_sides
    return tuple((float(circumradius * math.cos(a)), float(circumradius * math.sin(a))) for a in angles)


def _circle(radius: float, n: int = 16) -> np.ndarray:
    a = 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def geom_points(geom: GeomSpec) -> np.ndarray:
    """Points on the part's surface (its convex hull's corners, or a ring/sphere sampling), in the body frame."""
    s = geom.size
    if geom.kind == "box":
        local = np.array([[sx, sy, sz] for sx in (-s[0], s[0]) for sy in (-s[1], s[1]) for sz in (-s[2], s[2])])
    elif geom.kind == "prism":
        poly = np.asarray(geom.polygon)
        local = np.concatenate([np.c_[poly, np.full(len(poly), -s[0])], np.c_[poly, np.full(len(poly), s[0])]])
    elif geom.kind == "mesh":
        local = np.asarray(geom.vertices, dtype=np.float64)
    elif geom.kind == "cylinder":
        ring = _circle(s[0])
        local = np.concatenate([np.c_[ring, np.full(len(ring), -s[1])], np.c_[ring, np.full(len(ring), s[1])]])
    elif geom.kind in ("sphere", "ellipsoid", "capsule"):
        # Sphere sampling on a latitude/longitude grid; capsules are two hemispheres apart along z.
        radii = np.array([s[0]] * 3) if geom.kind != "ellipsoid" else np.array(s[:3])
        lat, lon = np.meshgrid(np.linspace(-math.pi / 2, math.pi / 2, 7), 2 * math.pi * np.arange(12) / 12)
        unit = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1).reshape(-1, 3)
        local = unit * radii
        if geom.kind == "capsule":
            local = np.concatenate([local + [0, 0, s[1]], local - [0, 0, s[1]]])
    else:
        raise ValueError(f"unknown geom kind {geom.kind!r}")
    return local @ quat_to_matrix(geom.quat).T + np.asarray(geom.pos)


def _centred(geoms: list[GeomSpec]) -> tuple[GeomSpec, ...]:
    """Shift the parts so the body origin is the centre of their bounding box."""
    pts = np.concatenate([geom_points(g) for g in geoms])
    centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    return tuple(replace(g, pos=tuple(float(v) for v in np.asarray(g.pos) - centre)) for g in geoms)


# ---------------------------------------------------------------------------------------------- training shapes
def _box(rng) -> list[GeomSpec]:
    return [GeomSpec("box", (rng.uniform(0.012, 0.03), rng.uniform(0.012, 0.04), rng.uniform(0.01, 0.025)))]


def _cube(rng) -> list[GeomSpec]:
    h = rng.uniform(0.0125, 0.025)
    return [GeomSpec("box", (h, h, h))]


def _cylinder(rng) -> list[GeomSpec]:
    return [GeomSpec("cylinder", (rng.uniform(0.012, 0.03), rng.uniform(0.01, 0.03)))]


def _prism(num_sides: int, r_lo: float, r_hi: float) -> Callable:
    def make(rng) -> list[GeomSpec]:
        poly = regular_polygon(num_sides, rng.uniform(r_lo, r_hi), phase=math.pi / 2)
        return [GeomSpec("prism", (rng.uniform(0.01, 0.025),), polygon=poly)]
    return make


def _half_cylinder(rng) -> list[GeomSpec]:
    r = rng.uniform(0.018, 0.035)
    arc = np.linspace(0.0, math.pi, 13)
    poly = tuple((float(r * math.cos(a)), float(r * math.sin(a))) for a in arc)
    return [GeomSpec("prism", (rng.uniform(0.01, 0.025),), polygon=poly)]


def _wedge(rng) -> list[GeomSpec]:
    """A ramp: right-angled triangle cross-section (in x-z) extruded along y."""
    lx, lz, w = rng.uniform(0.035, 0.06), rng.uniform(0.02, 0.04), rng.uniform(0.01, 0.025)
    poly = ((0.0, 0.0), (lx, 0.0), (0.0, lz))
    return [GeomSpec("prism", (w,), quat=_quat_about("x", math.pi / 2), polygon=poly)]


def _arch(rng) -> list[GeomSpec]:
    """A bridge block: two pillars under a bar (non-convex: an opening under the bar)."""
    span, thick, depth = rng.uniform(0.022, 0.035), rng.uniform(0.007, 0.011), rng.uniform(0.01, 0.02)
    leg_h = rng.uniform(0.01, 0.018)
    return [GeomSpec("box", (span + thick, depth, thick / 2), pos=(0.0, 0.0, 2 * leg_h + thick / 2)),
            GeomSpec("box", (thick / 2, depth, leg_h), pos=(-span - thick / 2, 0.0, leg_h)),
            GeomSpec("box", (thick / 2, depth, leg_h), pos=(span + thick / 2, 0.0, leg_h))]


TRAIN_SHAPES: dict[str, Callable] = {
    "box": _box,
    "cube": _cube,
    "cylinder": _cylinder,
    "triangular_prism": _prism(3, 0.02, 0.034),
    "pentagonal_prism": _prism(5, 0.018, 0.03),
    "hexagonal_prism": _prism(6, 0.016, 0.03),
    "half_cylinder": _half_cylinder,
    "wedge": _wedge,
    "arch": _arch,
}


# ---------------------------------------------------------------------------------------------- novel shapes
def _bar(rng, length=(0.025, 0.04), width=(0.008, 0.012), height=(0.01, 0.02)):
    return rng.uniform(*length), rng.uniform(*width), rng.uniform(*height)


def _l_shape(rng) -> list[GeomSpec]:
    length, w, h = _bar(rng)
    return [GeomSpec("box", (length, w, h), pos=(0.0, 0.0, 0.0)),
            GeomSpec("box", (w, length * 0.7, h), pos=(-length + w, length * 0.7 - w, 0.0))]


def _t_shape(rng) -> list[GeomSpec]:
    length, w, h = _bar(rng)
    return [GeomSpec("box", (length, w, h)), GeomSpec("box", (w, length * 0.8, h), pos=(0.0, -length * 0.8 - w, 0.0))]


def _cross(rng) -> list[GeomSpec]:
    length, w, h = _bar(rng)
    return [GeomSpec("box", (length, w, h)), GeomSpec("box", (w, length, h))]


def _u_shape(rng) -> list[GeomSpec]:
    length, w, h = _bar(rng, length=(0.02, 0.03))
    return [GeomSpec("box", (length, w, h)),
            GeomSpec("box", (w, length * 0.8, h), pos=(-length + w, length * 0.8 - w, 0.0)),
            GeomSpec("box", (w, length * 0.8, h), pos=(length - w, length * 0.8 - w, 0.0))]


def _star(rng) -> list[GeomSpec]:
    """Five-pointed star prism: a pentagon core plus five triangular points."""
    r_in, r_out, h = rng.uniform(0.012, 0.016), rng.uniform(0.028, 0.038), rng.uniform(0.01, 0.018)
    core = regular_polygon(5, r_in, phase=math.pi / 2 + math.pi / 5)
    parts = [GeomSpec("prism", (h,), polygon=core)]
    for k in range(5):
        a = math.pi / 2 + 2 * math.pi * k / 5
        tip = (r_out * math.cos(a), r_out * math.sin(a))
        left, right = core[(k - 1) % 5], core[k % 5]
        parts.append(GeomSpec("prism", (h,), polygon=(left, right, tip)))
    return parts


def _ellipsoid(rng) -> list[GeomSpec]:
    return [GeomSpec("ellipsoid", (rng.uniform(0.025, 0.04), rng.uniform(0.015, 0.022), rng.uniform(0.012, 0.018)))]


def _capsule(rng) -> list[GeomSpec]:
    """A pill lying on its side (along x)."""
    return [GeomSpec("capsule", (rng.uniform(0.01, 0.016), rng.uniform(0.015, 0.03)),
                     quat=_quat_about("y", math.pi / 2))]


def _dumbbell(rng) -> list[GeomSpec]:
    r, half = rng.uniform(0.012, 0.018), rng.uniform(0.02, 0.03)
    bar = GeomSpec("cylinder", (r * 0.45, half), quat=_quat_about("y", math.pi / 2))
    return [bar, GeomSpec("sphere", (r,), pos=(-half, 0.0, 0.0)), GeomSpec("sphere", (r,), pos=(half, 0.0, 0.0))]


def _ring(rng) -> list[GeomSpec]:
    """A flat ring (washer) of 10 boxes around a hole."""
    radius, thick, h = rng.uniform(0.02, 0.03), rng.uniform(0.005, 0.008), rng.uniform(0.007, 0.012)
    n = 10
    seg = radius * math.tan(math.pi / n) + thick / 2
    return [GeomSpec("box", (thick / 2, seg, h), pos=(radius * math.cos(a), radius * math.sin(a), 0.0),
                     quat=_quat_about("z", a)) for a in 2 * math.pi * np.arange(n) / n]


def _hammer(rng) -> list[GeomSpec]:
    handle_l, handle_r = rng.uniform(0.03, 0.045), rng.uniform(0.006, 0.009)
    head = (rng.uniform(0.008, 0.012), rng.uniform(0.018, 0.026), rng.uniform(0.009, 0.013))
    return [GeomSpec("cylinder", (handle_r, handle_l), quat=_quat_about("y", math.pi / 2)),
            GeomSpec("box", head, pos=(handle_l + head[0], 0.0, head[2] - handle_r))]


NOVEL_SHAPES: dict[str, Callable] = {
    "l_shape": _l_shape,
    "t_shape": _t_shape,
    "cross": _cross,
    "u_shape": _u_shape,
    "star_prism": _star,
    "ellipsoid": _ellipsoid,
    "capsule": _capsule,
    "dumbbell": _dumbbell,
    "ring": _ring,
    "hammer": _hammer,
}

SPLITS = ("train", "novel")
BLOCK_SETS: dict[str, dict[str, Callable]] = {"train": TRAIN_SHAPES, "novel": NOVEL_SHAPES}

# Object libraries: `random_objects` (the default world) are the 1000 procedurally generated objects of
# pybullet_data/random_urdfs (Quillen et al. 2018), irregular unions of convex parts; `blocks` are the primitives
# above, sized to fit the jaw (the seed's world). Each library has a `train` and a held-out `novel` split.
OBJECT_LIBRARIES = ("random_objects", "blocks")
RANDOM_OBJECTS_FILE = Path(__file__).parent / "data" / "random_objects.npz"
RANDOM_OBJECT_PREFIX = "random_"


@dataclass(frozen=True)
class RandomObjects:
    """The vendored random_urdfs objects: per object id, its convex parts' hull vertices (metres, centred).

    The standard split (Quillen et al. 2018): ids ending in 0 are the 100 novel test objects, never used for
    pretraining or learning; the other 900 train. Degenerate objects (`skipped`, with reasons) are left out.
    """

    parts: dict[int, tuple[np.ndarray, ...]]
    skipped: dict[int, str]

    def split(self, object_set: str) -> list[int]:
        check_object_set(object_set)
        return [i for i in sorted(self.parts) if (i % 10 == 0) == (object_set == "novel")]


@cache
def random_objects() -> RandomObjects:
    """Load the vendored meshes (scripts/extract_random_objects.py rebuilds them from the pybullet wheel)."""
    if not RANDOM_OBJECTS_FILE.is_file():
        raise FileNotFoundError(f"{RANDOM_OBJECTS_FILE} is missing: rebuild it with "
                                "scripts/extract_random_objects.py from the pybullet wheel, or use object_library "
                                "'blocks'")
    data = np.load(RANDOM_OBJECTS_FILE)
    bounds = np.cumsum(np.r_[0, data["vertex_counts"]])
    part_ranges = np.cumsum(np.r_[0, data["part_counts"]])
    vertices = data["vertices"].astype(np.float64)
    parts = {int(i): tuple(vertices[bounds[k]:bounds[k + 1]] for k in range(part_ranges[j], part_ranges[j + 1]))
             for j, i in enumerate(data["ids"])}
    return RandomObjects(parts, dict(zip(data["skipped_ids"].tolist(), data["skipped_reasons"].tolist())))


def random_object_name(object_id: int) -> str:
    return f"{RANDOM_OBJECT_PREFIX}{object_id:03d}"


def _random_object_geoms(shape: str) -> list[GeomSpec]:
    library = random_objects()
    try:
        object_id = int(shape[len(RANDOM_OBJECT_PREFIX):])
    except ValueError:
        object_id = -1
    if not shape.startswith(RANDOM_OBJECT_PREFIX) or object_id not in library.parts:
        why = f" (left out: {library.skipped[object_id]})" if object_id in library.skipped else ""
        raise ValueError(f"unknown random object {shape!r}{why}; expected 'random_NNN' with NNN a usable id "
                         f"in 000-999")
    return [GeomSpec("mesh", (), vertices=v) for v in library.parts[object_id]]


def check_object_set(object_set: str) -> str:
    if object_set not in SPLITS:
        raise ValueError(f"unknown object set {object_set!r}; expected one of {list(SPLITS)} (the library's "
                         "training objects or its held-out novel ones)")
    return object_set


def check_object_library(library: str) -> str:
    if library not in OBJECT_LIBRARIES:
        raise ValueError(f"unknown object library {library!r}; expected one of {list(OBJECT_LIBRARIES)}")
    return library


def shape_names(library: str, object_set: str) -> list[str]:
    """The shape names a scene of this library and split draws from."""
    check_object_library(library)
    check_object_set(object_set)
    if library == "blocks":
        return sorted(BLOCK_SETS[object_set])
    return [random_object_name(i) for i in random_objects().split(object_set)]


def random_color(rng) -> tuple[float, float, float, float]:
    """A saturated, bright random colour (stands out from the grey table in the colour heightmap)."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))
    return (r, g, b, 1.0)


def make_object(shape: str, rng: np.random.Generator, name: str) -> ObjectSpec:
    """One object of type `shape` (a block shape with random size, or 'random_NNN') with a random colour."""
    if shape.startswith(RANDOM_OBJECT_PREFIX):
        geoms = _centred(_random_object_geoms(shape))
    elif shape in TRAIN_SHAPES or shape in NOVEL_SHAPES:
        geoms = _centred({**TRAIN_SHAPES, **NOVEL_SHAPES}[shape](rng))
    else:
        raise ValueError(f"unknown object shape {shape!r}; expected one of {sorted(TRAIN_SHAPES)}, "
                         f"{sorted(NOVEL_SHAPES)} or 'random_NNN'")
    parts = tuple(geom_points(g) for g in geoms)
    return ObjectSpec(name=name, shape=shape, geoms=geoms, rgba=random_color(rng), points=np.concatenate(parts),
                      parts=parts)


def sample_objects(rng: np.random.Generator, num_objects: int, object_set: str = "train",
                   shapes: list[str] | None = None, library: str = "random_objects") -> list[ObjectSpec]:
    """`num_objects` objects drawn uniformly from the library's split (or exactly `shapes`), random colours."""
    if shapes is None:
        if isinstance(num_objects, bool) or not isinstance(num_objects, (int, np.integer)) or num_objects < 1:
            raise ValueError(f"number of objects must be a positive integer, got {num_objects!r}")
        names = shape_names(library, object_set)
        shapes = [names[k] for k in rng.integers(0, len(names), size=int(num_objects))]
    return [make_object(shape, rng, name=f"object_{i:02d}_{shape}") for i, shape in enumerate(shapes)]


def sample_drop_poses(rng: np.random.Generator, objects: list[ObjectSpec], low_xy, high_xy, table_z: float,
                      gap: float = 0.002) -> list[tuple[np.ndarray, np.ndarray]]:
    """VPG-style drop: random xy in [low_xy, high_xy], uniformly random orientation, and each object raised until
    its bounding sphere clears the table and every object placed before it. Returns (position, quat wxyz) each."""
    low_xy, high_xy = np.asarray(low_xy, dtype=np.float64), np.asarray(high_xy, dtype=np.float64)
    poses: list[tuple[np.ndarray, np.ndarray]] = []
    spheres: list[tuple[np.ndarray, float]] = []
    for obj in objects:
        r = obj.bounding_radius
        xy = rng.uniform(low_xy, high_xy)
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        pos = np.array([xy[0], xy[1], table_z + r + gap])
        while any(np.linalg.norm(pos - c) < r + rc + gap for c, rc in spheres):
            pos[2] += 0.005
        spheres.append((pos.copy(), r))
        poses.append((pos, quat))
    return poses
