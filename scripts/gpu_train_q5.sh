#!/usr/bin/env bash
# Q5's checkpoints in one GPU call: trains the conditional GAN, the VAE and the DDPM (MNIST; the
# Fashion-MNIST DDPM too unless FASHION=0) side by side, ships them into checkpoints/ of this
# working copy, scores them with `imagegen eval --manifest` (n = 10000, seed 0; the DDPM with the
# ancestral sampler and DDIM 100/50/20 steps, plus the CPU check that tests/test_checkpoints.py
# recomputes), times every shipped generator's sampling on the GPU, and copies what it shipped
# and the manifest to OUT_DIR/checkpoints.
#
# Usage (on the GPU machine, repo root; everything ends within ~9.5 minutes):
#   IMAGEGEN_DATA=.gpu/data IMAGEGEN_GIT_COMMIT=<sha> bash scripts/gpu_train_q5.sh OUT_DIR
# <sha>: run `git rev-parse HEAD` here and paste it: the device machine's copy of .git can be stale.
# Then, back home:
#   python scripts/merge_manifest.py OUT_DIR/checkpoints     # copies the new files, merges their entries
#   python scripts/time_sampling.py                          # CPU sampling times (1 thread), into the manifest
#
# Each job runs under `timeout`; the DDPM trains for DDPM_SECONDS (--time-budget: it stops itself
# and writes its final checkpoint), the GANs/VAE for a fixed number of epochs (a run cut by the
# timeout still has its last checkpoint). A failed or late job costs its own rows only.
set -uo pipefail
out=${1:?usage: gpu_train_q5.sh OUT_DIR}
mkdir -p "$out/runs" "$out/logs" "$out/evals" "$out/checkpoints"
out=$(cd "$out" && pwd)
export PYTHONUNBUFFERED=1
DDPM_SECONDS=${DDPM_SECONDS:-300}   # training time of each DDPM (the ancestral eval needs ~1-2 min after it)
FASHION=${FASHION:-1}               # also train and score ddpm_fashion (DDIM rows only)
CGAN_EPOCHS=${CGAN_EPOCHS:-30}
VAE_EPOCHS=${VAE_EPOCHS:-40}
DEVICE=${DEVICE:-cuda}
N=10000
SMOKE=${SMOKE:-0}  # 1: tiny models, little data, n=200, on DEVICE=cpu: checks this script in ~3 minutes
if [ "$SMOKE" = 1 ]; then
  tiny_cgan="--limit 256 --width 8 --z-dim 8"; tiny_vae="--limit 256 --width 4 --hidden 8"
  tiny_ddpm="--limit 256 --channels 4,4,8 --T 50"; N=200; DDPM_SECONDS=${DDPM_SECONDS_SMOKE:-10}
else
  tiny_cgan=""; tiny_vae=""; tiny_ddpm=""
fi
ig() { python3 -m imagegen_lib.cli "$@"; }
t0=$SECONDS
stamp() { echo "[$((SECONDS - t0)) s] $*"; }
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

# --- 1. train, side by side (each of these small models leaves the H100 mostly idle) ----------
( timeout 420 python3 -m imagegen_lib.cli train cgan --epochs "$CGAN_EPOCHS" $tiny_cgan --device "$DEVICE" --no-progress \
    --out "$out/runs/cgan_mnist" > "$out/logs/cgan_mnist.train.log" 2>&1
  stamp "cgan trained (rc $?)"
  ig ship "$out/runs/cgan_mnist/generator.safetensors" --name cgan_mnist
  timeout 120 python3 -m imagegen_lib.cli eval checkpoints/cgan_mnist.safetensors --n $N --device "$DEVICE" --manifest \
    --json "$out/evals/cgan_mnist.json" > "$out/logs/cgan_mnist.eval.log" 2>&1
  stamp "cgan evaluated (rc $?)" ) &
( timeout 300 python3 -m imagegen_lib.cli train vae --epochs "$VAE_EPOCHS" $tiny_vae --device "$DEVICE" --no-progress \
    --out "$out/runs/vae_mnist" > "$out/logs/vae_mnist.train.log" 2>&1
  stamp "vae trained (rc $?)"
  ig ship "$out/runs/vae_mnist/model.safetensors" --name vae_mnist
  timeout 120 python3 -m imagegen_lib.cli eval checkpoints/vae_mnist.safetensors --n $N --device "$DEVICE" --manifest \
    --json "$out/evals/vae_mnist.json" > "$out/logs/vae_mnist.eval.log" 2>&1
  stamp "vae evaluated (rc $?)" ) &

ddpm() {  # ddpm NAME DATASET ANCESTRAL(0|1)
  local name=$1 dataset=$2 ancestral=$3
  timeout $((DDPM_SECONDS + 60)) python3 -m imagegen_lib.cli train ddpm --dataset "$dataset" --epochs 1000 $tiny_ddpm \
    --time-budget "$DDPM_SECONDS" --device "$DEVICE" --no-progress --out "$out/runs/$name" > "$out/logs/$name.train.log" 2>&1
  stamp "$name trained (rc $?)"
  ig ship "$out/runs/$name/model.safetensors" --name "$name" || return
  local ck="checkpoints/$name.safetensors"
  if [ "$ancestral" = 1 ]; then  # the slowest evaluation: 1000 U-Net calls on each of 10000 images
    ( timeout 170 python3 -m imagegen_lib.cli eval "$ck" --n $N --device "$DEVICE" --manifest \
        --json "$out/evals/${name}_ancestral.json" > "$out/logs/$name.eval_ancestral.log" 2>&1
      stamp "$name ancestral evaluated (rc $?)" ) &
  fi
  ( for steps in $( [ "$SMOKE" = 1 ] && echo 20 || echo 100 50 20 ); do
      timeout 90 python3 -m imagegen_lib.cli eval "$ck" --sampler ddim --steps $steps --n $N --device "$DEVICE" \
        --manifest --json "$out/evals/${name}_ddim$steps.json" > "$out/logs/$name.eval_ddim$steps.log" 2>&1
      stamp "$name ddim$steps evaluated (rc $?)"
    done ) &
  # The CPU check (generators.CPU_CHECK: DDIM 10 steps, n=200, on the CPU): tests recompute it on a laptop.
  ( OMP_NUM_THREADS=4 timeout 150 python3 -m imagegen_lib.cli eval "$ck" --sampler ddim --steps 10 --n 200 \
      --device cpu --manifest --json "$out/evals/${name}_cpucheck.json" > "$out/logs/$name.eval_cpucheck.log" 2>&1
    stamp "$name CPU check evaluated (rc $?)" ) &
  wait
}
ddpm ddpm_mnist mnist 1 &
if [ "$FASHION" = 1 ]; then ddpm ddpm_fashion fashion-mnist 0 & fi
wait
stamp "training and evaluation done"

# --- 2. sampling time of every shipped generator on this GPU (alone on it now) --------------
timeout 60 python3 scripts/time_sampling.py --device "$DEVICE" --max-seconds 15 --ddim-steps "$( [ "$SMOKE" = 1 ] && echo 10,20 || echo 10,20,50,100 )" > "$out/logs/time_sampling_$DEVICE.log" 2>&1
stamp "GPU sampling timed (rc $?)"

# --- 3. what the lead takes home ----------------------------------------------------------
for name in cgan_mnist vae_mnist ddpm_mnist ddpm_fashion; do
  cp checkpoints/$name.* "$out/checkpoints/" 2>/dev/null
done
cp checkpoints/MANIFEST.json "$out/checkpoints/"
# The training states (last.safetensors: weights, EMA, Adam moments; 20-30 MB each) aren't needed
# once shipped and would dominate what comes back; KEEP_STATE=1 keeps them (to --resume elsewhere).
[ "${KEEP_STATE:-0}" = 1 ] || rm -f "$out"/runs/*/last.safetensors
tail -n 2 "$out"/logs/*.log
grep -h "FID\|class coverage\|sampling:" "$out"/logs/*.eval*.log
cat "$out/logs/time_sampling_$DEVICE.log"
ls -la "$out/checkpoints"
stamp "all done"
