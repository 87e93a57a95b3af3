#!/usr/bin/env bash
# Trains every shipped checkpoint in one go on a GPU machine (the `device` tool), concurrently:
# each of these small models leaves an H100 mostly idle, so four runs side by side cost the
# wall time of the slowest one. Usage (on the GPU machine, repo root):
#   IMAGEGEN_DATA=.gpu/data IMAGEGEN_GIT_COMMIT=<sha> bash scripts/gpu_train_all.sh OUT_DIR
# <sha>: run `git rev-parse HEAD` here and paste it: the device machine's copy of .git can be stale.
set -uo pipefail
out=${1:?usage: gpu_train_all.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
limit=${TIME_LIMIT:-520}   # seconds; runs checkpoint as they go, so a cut run still ships its last epoch
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

timeout $limit python3 -m imagegen_lib.cli train dcgan --epochs 30 --out "$out/dcgan_mnist" --device cuda --no-progress \
  > "$out/dcgan_mnist.log" 2>&1 &
timeout $limit python3 -m imagegen_lib.cli train mlpgan --epochs 100 --out "$out/mlpgan_mnist" --device cuda --no-progress \
  > "$out/mlpgan_mnist.log" 2>&1 &
timeout $limit python3 -m imagegen_lib.cli train dcgan --dataset fashion-mnist --epochs 30 --out "$out/dcgan_fashion" \
  --device cuda --no-progress > "$out/dcgan_fashion.log" 2>&1 &
( timeout $limit python3 -m imagegen_lib.cli train classifier --dataset mnist --epochs 15 --out "$out/classifier_mnist" \
    --device cuda --no-progress > "$out/classifier_mnist.log" 2>&1
  timeout $limit python3 -m imagegen_lib.cli train classifier --dataset fashion-mnist --epochs 15 \
    --out "$out/classifier_fashion" --device cuda --no-progress > "$out/classifier_fashion.log" 2>&1 ) &
wait
tail -n 3 "$out"/*.log
