#!/usr/bin/env bash
# Fifth session: does scoring the jaw geometry (grasp_core.jaw_geometry, docs/learning.md 1.8) teach the angle
# faster? Each row as in sim_fast_v4/run_greedy_rows.sh: ours at 10 objects, 3 seeds x 250 attempts (G@100 / G@200
# from the first 200), the Q network kept every 50 attempts and greedy on the same 40 fresh scenes (world seeds
# 7000-7039). Raw runs under runs/exp8/; greedy tables land in docs/results/sim_fast_v6/greedy_rows/.
#   nohup docs/results/sim_fast_v6/run_geometry_rows.sh ROW... > runs/exp8/run_geometry_rows.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
EPS="exploration.epsilon_decay_steps=250"
OUT=docs/results/sim_fast_v6/greedy_rows
mkdir -p runs/exp8 $OUT
curve_row() {  # name, then --learning/--set arguments
  name=$1; shift
  echo "curve row $name: $(date -u)"
  mkdir -p runs/exp8/$name
  ln -sfn ../../exp4/results/pretrained runs/exp8/$name/pretrained
  $GE run --methods ours --objects 10 --seeds 3 --steps 250 --jobs 2 --threads 1 --no-loss-comparison "$@" \
    --checkpoint-every 50 --out runs/exp8/$name --quiet  # finished runs are skipped
  [ -e $OUT/$name.json ] || scripts/in_env.sh python -m grasp_experiments.diagnosis \
    --checkpoints runs/exp8/$name/runs/ours/objects_10/seed_* --objects 10 --scenes 40 --seed 7000 --threads 2 \
    --out $OUT/$name.json
}
for row in "$@"; do
  case $row in
    jaw_geometry) curve_row jaw_geometry --set $EPS dqn.jaw_geometry=true ;;
    jaw_geometry_glr_0.03) curve_row jaw_geometry_glr_0.03 --set $EPS dqn.jaw_geometry=true dqn.geometry_lr=0.03 ;;
    jaw_geometry_lr_3e-4) curve_row jaw_geometry_lr_3e-4 --set $EPS dqn.jaw_geometry=true dqn.lr=3e-4 ;;
    jaw_geometry_only) curve_row jaw_geometry_only --set $EPS dqn.jaw_geometry=true dqn.lr=1e-7 ;;  # head ~frozen
    *) echo "unknown row $row"; exit 2 ;;
  esac
done
echo "run_geometry_rows: done $(date -u)"
