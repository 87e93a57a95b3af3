#!/usr/bin/env bash
# Exercise B's GPU measurements in one device-tool command (~8 min on one H200), side by side:
#   * "why L1 when judged by PSNR?": the residual net x3 from scratch with --loss l1 and --loss mse,
#     the same seed, steps and recipe (the shipped model's, shorter);
#   * the perception-distortion trade-off: fine-tunes of the shipped L1 model with an adversarial
#     term of weight W for each of ADV_WEIGHTS (0: the control, the same fine-tune without D);
# then every model scored on Set5 and Set14 (PSNR, SSIM, gradient-energy ratio).
#
# Usage (GPU machine, repo root; SR sets under $IMAGEGEN_DATA/sr, checkpoints/sr_resnet_x3 present):
#   IMAGEGEN_GIT_COMMIT=<sha> bash scripts/gpu_study_sr.sh OUT_DIR
set -uo pipefail
out=${1:?usage: gpu_study_sr.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-3}
LOSS_STEPS=${LOSS_STEPS:-5000}
ADV_STEPS=${ADV_STEPS:-3000}
ADV_WEIGHTS=${ADV_WEIGHTS:-"0 0.005 0.05"}
TRAIN_MIN=${TRAIN_MIN:-6.5}      # each run's --minutes cap (the cosine schedule ends with it)
DEVICE=${DEVICE:-cuda}
SR_EXTRA=${SR_EXTRA:-}   # e.g. "--patch 8 --batch-size 4" for a smoke test
RECIPE="--arch resnet --scale 3 --color y --bf16 --channels-last --batch-size 64 --patch 32
  --downscales 1,0.95,0.9,0.85,0.8,0.75,0.7,0.65,0.6,0.55,0.5 --device $DEVICE --no-progress --log-every 200 $SR_EXTRA"
ig() { python3 -m imagegen_lib.cli "$@"; }
score() { ig eval-sr "$1/model.safetensors" --set Set5 Set14 --device "$DEVICE" --json "$1/eval.json"; }

for loss in l1 mse; do
  run=$out/sr_${loss}_x3
  ( ig train sr $RECIPE --loss "$loss" --lr 5e-4 --steps "$LOSS_STEPS" --minutes "$TRAIN_MIN" \
      --eval-every 0 --seed 0 --out "$run" && score "$run" ) > "$run.log" 2>&1 &
done
for w in $ADV_WEIGHTS; do
  run=$out/sr_adv-${w}_x3
  ( ig train sr $RECIPE --loss l1 --init-from checkpoints/sr_resnet_x3.safetensors --lr 1e-4 \
      --adv-weight "$w" --d-lr 1e-4 --steps "$ADV_STEPS" --minutes "$TRAIN_MIN" --eval-every 0 --seed 0 \
      --out "$run" && score "$run" ) > "$run.log" 2>&1 &
done
wait
echo "done: $(ls "$out"/*/eval.json 2>/dev/null | wc -l) evaluations"
