#!/usr/bin/env bash
# What the session's time allowed after stage 1 (run_all.sh) and the `seed` ablation row (run_rest2.sh):
# two more ablation rows side by side, ours and vanilla at 2, 4 and 6 objects for 100 attempts (not 250), and
# the novel-object test.
set -u
cd "$(dirname "$0")/../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
row() {  # name, then --learning/--set arguments
  name=$1; shift
  mkdir -p runs/exp/ablation/$name
  ln -sfn ../../results/pretrained runs/exp/ablation/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 200 --jobs 1 --threads 1 --no-loss-comparison "$@" \
    --out runs/exp/ablation/$name --quiet
}
row no_learning --set $EPS dqn.lr=1e-12 &
row uniform_exploration --set $EPS exploration.mode=uniform &
wait
mkdir -p runs/exp/counts; ln -sfn ../results/pretrained runs/exp/counts/pretrained
$GE run --methods ours vanilla --objects 2 4 6 --seeds 2 --steps 100 --jobs 2 --threads 1 --no-loss-comparison \
  --set $EPS --out runs/exp/counts --quiet
$GE novel --runs runs/exp/results --objects 10 --rounds 4 --attempts 20 --include-pretrained --threads 2 --quiet
echo "run_rest3: done $(date -u)"
