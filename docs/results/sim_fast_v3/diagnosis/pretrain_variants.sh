#!/usr/bin/env bash
# Pretraining variants of the demo's warm start (fast profile, pad none), each diagnosed greedily on 25 scenes.
cd "$(dirname "$0")/../.."
run() {  # name, pretrain args...
  name=$1; shift
  scripts/in_env.sh python -m grasp_core.pretrain --dataset runs/diag/dataset --out runs/diag/$name.safetensors \
    --profile fast --seed 0 --threads 1 --quiet "$@" > runs/diag/$name.pretrain.log 2>&1
  scripts/in_env.sh python -m grasp_experiments.diagnosis --checkpoint runs/diag/$name.safetensors --scenes 25 \
    --out runs/diag/diag_$name.json > runs/diag/diag_$name.log 2>&1
}
run $1 "${@:2}"
