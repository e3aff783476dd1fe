#!/usr/bin/env bash
# docs/results/sim_fast_v6/ablation.{md,json} (docs/learning.md 3.1): the fifth session's default against the rows
# that isolate what changed (G@100 / G@200 of the first 200 attempts). `v4_default` is the v4 default's runs (no jaw
# geometry, head lr 1e-3; the preset was named `default` then), `jaw_geometry_lr_1e-3` adds only the geometry to it,
# `default` (runs/exp9/results, run_all.sh) and `jaw_geometry_lr_3e-4` (run_geometry_rows.sh) are the new default;
# `head_lr_1e-4` (run_extra_rows.sh, 2 seeds) lowers its head rate; `fast_bilinear_geometry` (run_extra_rows.sh) is
# the default on the fast_bilinear profile and its own Q_s. Rows made before a preset changed show the preset
# by name: read `jaw_geometry_lr_1e-3` and `v4_default` as head lr 1e-3, as they ran.
set -eu
cd "$(dirname "$0")/../../.."
scripts/in_env.sh python -m grasp_experiments.ablation --method ours --objects 10 \
  --out docs/results/sim_fast_v6/ablation.md \
  default=runs/exp9/results jaw_geometry_lr_3e-4=runs/exp8/jaw_geometry_lr_3e-4 \
  jaw_geometry_lr_1e-3=runs/exp8/jaw_geometry v4_default=runs/exp4/results seed=runs/exp4/ablation/seed \
  head_lr_1e-4=runs/exp10/head_lr_1e-4 fast_bilinear_geometry=runs/exp10/fast_bilinear_geometry
