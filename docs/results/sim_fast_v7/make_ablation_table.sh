#!/usr/bin/env bash
# docs/results/sim_fast_v7/ablation.{md,json} (docs/learning.md 3.1): the sixth session's default (the head's score
# pooled over the jaw angles, runs/exp12/results from run_all.sh) against the fifth session's (each rotation's own
# head score, i.e. today's default with dqn.angle_source=network: runs/exp9/results), the v4 default (no jaw
# geometry, head lr 1e-3: runs/exp4/results) and the seed's method (runs/exp4/ablation/seed). Rows made before a
# preset changed show the preset by name, as they ran.
set -eu
cd "$(dirname "$0")/../../.."
scripts/in_env.sh python -m grasp_experiments.ablation --method ours --objects 10 \
  --out docs/results/sim_fast_v7/ablation.md \
  default=runs/exp12/results angle_source_network=runs/exp9/results v4_default=runs/exp4/results \
  seed=runs/exp4/ablation/seed
