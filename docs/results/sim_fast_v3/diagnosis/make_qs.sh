#!/usr/bin/env bash
# The demo's warm start, made by hand: 50 simulated key-point images (seed 0) and Q_s pretrained for $1 epochs.
set -e
cd "$(dirname "$0")/../.."
EPOCHS=${1:-8}
[ -f runs/diag/dataset/dataset.json ] || scripts/in_env.sh python -c "
from grasp_core.sim import make_keypoint_dataset
make_keypoint_dataset('runs/diag/dataset', num_images=50, seed=0, show_progress=False)"
scripts/in_env.sh python -m grasp_core.pretrain --dataset runs/diag/dataset --out runs/diag/qs_e${EPOCHS}.safetensors \
  --profile fast --epochs $EPOCHS --seed 0 --threads 1 --quiet
