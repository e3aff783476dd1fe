#!/usr/bin/env bash
# docs/results/sim_fast_v4/ablation.{md,json} (docs/learning.md 3.1) from the finished runs of run_all.sh,
# run_rows.sh, run_greedy_rows.sh and ../sim_fast_v5/run_curve.sh (G@100 / G@200 of the first 200 attempts).
set -eu
cd "$(dirname "$0")/../../.."
A=runs/exp4/ablation
scripts/in_env.sh python -m grasp_experiments.ablation --method ours --objects 10 \
  --out docs/results/sim_fast_v4/ablation.md \
  default=runs/exp4/results no_learning=$A/no_learning v3_learner=$A/v3_learner no_action_space=$A/no_action_space \
  seed=$A/seed uniform_exploration=$A/uniform_exploration no_exclusion=$A/no_exclusion \
  one_sample_updates=$A/one_sample_updates sgd_1e-4=$A/sgd_1e-4 one_rotation_trained=$A/one_rotation_trained \
  boltzmann=$A/boltzmann publish_every_10=$A/publish_every_10 replay_steps_4=runs/exp6/replay_steps_4 \
  lr_3e-3=runs/exp6/lr_3e-3 full_network=runs/exp6/full_network epsilon_decay_100=runs/exp6/epsilon_decay_100 \
  fast_bilinear=runs/exp7/curve
