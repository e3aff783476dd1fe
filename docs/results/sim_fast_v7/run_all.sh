#!/usr/bin/env bash
# The comparisons of docs/learning.md 4 with the sixth session's default (the head's score pooled over the jaw
# angles, the angle from the jaw geometry alone: docs/learning.md 1.9), 2 runs at a time, 1 thread each; raw runs
# under runs/exp12/. The Q_s is the one every v4-v7 result used (runs/exp/results/pretrained: 50 simulated
# key-point images, Adam 1e-3, 8 epochs).
#   nohup docs/results/sim_fast_v7/run_all.sh > runs/exp12/run_all.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
R=runs/exp12/results
mkdir -p $R
ln -sfn ../../exp/results/pretrained $R/pretrained
# 1. Ours, vanilla and MoG at 10 objects, 5 seeds x 250 attempts (checkpoints every 50 for the greedy rows).
$GE run --methods ours vanilla mog --objects 10 --seeds 5 --steps 250 --jobs 2 --threads 1 \
  --no-loss-comparison --set $EPS --checkpoint-every 50 --out $R --quiet
# 2. Ours and vanilla at 2, 4 and 6 objects, 2 seeds x 250 attempts (Table I).
$GE run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out $R --quiet
# 3. PoI at 10 objects, 3 seeds x 250 attempts (its ImageNet trunk is ~3x slower per attempt).
$GE run --methods poi --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out $R --quiet
# 4. Novel objects (Table II) with the models trained at 10 objects.
$GE novel --runs $R --methods ours vanilla mog poi --objects 10 --rounds 6 --attempts 20 --include-pretrained \
  --threads 2 --quiet  # --methods: the experiment records only its last run command's methods
# 5. The report: Table I against each method's own G-bar, and again against one shared G-bar.
$GE report --runs $R --out docs/results/sim_fast_v7
$GE report --runs $R --out docs/results/sim_fast_v7/shared_gbar --gbar shared
echo "run_all: done $(date -u)"
