#!/usr/bin/env bash
# The comparisons of docs/learning.md 4 with the fifth session's default (jaw geometry scored, docs/learning.md
# 1.8), 2 runs at a time, 1 thread each; raw runs under runs/exp9/. What ran in the fifth session: step 1 (paused
# for ~20 min while a demo ran alone), then steps 3 and 4; step 2 (Table I's other object counts) was left out for
# the session's time. The Q_s is the one every v4-v6 result used
# (runs/exp/results/pretrained: 50 simulated key-point images, Adam 1e-3, 8 epochs).
#   nohup docs/results/sim_fast_v6/run_all.sh > runs/exp9/run_all.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
mkdir -p runs/exp9/results
ln -sfn ../../exp/results/pretrained runs/exp9/results/pretrained
# 1. The four methods at 10 objects, 5 seeds x 250 attempts.
$GE run --methods ours vanilla mog poi --objects 10 --seeds 5 --steps 250 --jobs 2 --threads 1 \
  --no-loss-comparison --set $EPS --out runs/exp9/results --quiet
# 2. Ours and vanilla at 2, 4 and 6 objects, 2 seeds x 100 attempts (Table I; 100, not 250, for the session's time).
$GE run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 100 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out runs/exp9/results --quiet
# 3. Novel objects (Table II) with the models trained at 10 objects.
$GE novel --runs runs/exp9/results --objects 10 --rounds 6 --attempts 20 --include-pretrained --threads 2 --quiet
# 4. The report: Table I against each method's own G-bar, and again against one shared G-bar.
$GE report --runs runs/exp9/results --out docs/results/sim_fast_v6
$GE report --runs runs/exp9/results --out docs/results/sim_fast_v6/shared_gbar --gbar shared
echo "run_all: done $(date -u)"
