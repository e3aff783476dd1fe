#!/usr/bin/env bash
# Fourth session: learner variants measured the finer way of docs/learning.md 1.6. Each row: ours at 10 objects,
# 3 seeds x 250 attempts (G@100 / G@200 from the first 200), its Q network kept every 50 attempts, and every
# checkpoint greedy on the same 40 fresh scenes (world seeds 7000-7039). Then the two 200-attempt rows left over.
# Raw runs under runs/exp6/; greedy tables and plots land in docs/results/sim_fast_v4/greedy_rows/.
#   nohup docs/results/sim_fast_v4/run_greedy_rows.sh > runs/exp6/run_greedy_rows.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
OUT=docs/results/sim_fast_v4/greedy_rows
mkdir -p runs/exp6 $OUT
curve_row() {  # name, then --learning/--set arguments
  name=$1; shift
  echo "curve row $name: $(date -u)"
  mkdir -p runs/exp6/$name
  ln -sfn ../../exp4/results/pretrained runs/exp6/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 --no-loss-comparison "$@" \
    --checkpoint-every 50 --out runs/exp6/$name --quiet  # finished runs are skipped
  [ -e $OUT/$name.json ] || scripts/in_env.sh python -m grasp_experiments.diagnosis \
    --checkpoints runs/exp6/$name/runs/ours/objects_10/seed_* --objects 10 --scenes 40 --seed 7000 --threads 2 \
    --out $OUT/$name.json
}
source docs/results/sim_fast_v4/rows_lib.sh
curve_row replay_steps_4 --set $EPS dqn.replay_steps=4
curve_row lr_3e-3 --set $EPS dqn.lr=3e-3
curve_row full_network --set $EPS dqn.trainable=all dqn.batch_size=4 dqn.replay_steps=0 dqn.lr=3e-5
# gamma_0.5_target_net was stopped after ~70 attempts per seed (~10 s per attempt; docs/learning.md 3.1)
row gamma_0.5_target_net --set $EPS dqn.loss=smooth_l1 dqn.gamma=0.5 dqn.target_update_every=20 dqn.double_dqn=true
row publish_every_10 --set $EPS publish_every=10
curve_row epsilon_decay_100 --set exploration.epsilon_decay_steps=100
echo "run_greedy_rows: done $(date -u)"
