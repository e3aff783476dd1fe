#!/usr/bin/env bash
# After phase 1 (beside phase 2): the greedy-checkpoint curve of docs/learning.md 1.6 for ours and vanilla (seeds
# 0-1, every 100 attempts, 20 fresh 10-object scenes from world seed 7000 in each run's own world and action
# space), and the novel-object test (Table II): the 100 held-out random objects, 10 rounds of 10, 2 grasps per
# object, with every trained model at 10 objects and the pretrained Q_s alone.
#   nohup docs/results/sim_mesh_v8/run_after_phase1.sh > runs/exp22/run_after_phase1.log 2>&1 &
set -u
cd "$(dirname "$0")/../../.."
GE="scripts/in_env.sh python -m grasp_experiments.cli"
R=runs/exp22/results
OUT=docs/results/sim_mesh_v8
until grep -q "phase 1 done" runs/exp22/run_all.log 2>/dev/null; do sleep 20; done
$GE novel --runs $R --methods ours vanilla --objects 10 --rounds 10 --attempts 20 --include-pretrained \
  --threads 1 --quiet
cp $R/novel.json $OUT/novel.json
for m in ours vanilla; do
  scripts/in_env.sh python -m grasp_experiments.diagnosis --checkpoints $R/runs/$m/objects_10/seed_0{0,1} \
    --scenes 20 --seed 7000 --out $OUT/greedy_$m.json
done
echo "run_after_phase1: done $(date -u)"
