#!/usr/bin/env bash
# Why do vanilla and MoG end above ours once the jaw geometry is scored (docs/learning.md 4.1)? Candidate fixes, ours
# at 10 objects, 3 seeds x 250 attempts, 1 job each; raw runs under runs/exp10/<row>. The fifth session ran
# head_lr_1e-4 (stopped after 2 seeds for time) and, at the end, fast_bilinear_geometry (3 seeds).
#   nohup docs/results/sim_fast_v6/run_extra_rows.sh head_lr_1e-4 > runs/exp10/head_lr_1e-4.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
for name in "$@"; do
  mkdir -p runs/exp10/$name
  case $name in
    head_lr_1e-4) ln -sfn ../../exp/results/pretrained runs/exp10/$name/pretrained; args=(--set $EPS dqn.lr=1e-4) ;;
    fast_bilinear_geometry) ln -sfn ../../exp7/curve/pretrained runs/exp10/$name/pretrained
                            args=(--profile fast_bilinear --set $EPS) ;;
    *) echo "unknown row $name"; exit 2 ;;
  esac
  $GE run --methods ours --objects 10 --seeds 3 --steps 250 --jobs 1 --threads 1 --no-loss-comparison "${args[@]}" \
    --out runs/exp10/$name --quiet
done
