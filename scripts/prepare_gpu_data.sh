#!/usr/bin/env bash
# Copies the super-resolution sets the GPU run needs into .gpu/sr (git-ignored), with their checksums.
# BSD100 stays here (the device tool carries at most 64 MiB): it is scored on this machine's CPU.
# Usage (repo root): bash scripts/prepare_gpu_data.sh [DATA_ROOT]     (default ../shared/data)
# Then run with carry [".gpu/sr"] and IMAGEGEN_DATA=.gpu (the loader reads <root>/sr/<Set>/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$root/../shared/data}
dest=$root/.gpu/sr
mkdir -p "$dest"
for set in T91 Set5 Set14; do
  rm -rf "${dest:?}/$set"
  cp -r "$data/sr/$set" "$dest/$set"
done
# The lines of the copied sets, with paths relative to .gpu (so: cd .gpu && sha256sum -c sr/SHA256SUMS).
grep -E '  sr/(T91|Set5|Set14)/' "$data/SHA256SUMS" > "$dest/SHA256SUMS"
(cd "$root/.gpu" && sha256sum --quiet -c sr/SHA256SUMS)
echo "prepared $(wc -l < "$dest/SHA256SUMS") files, $(du -sh "$dest" | cut -f1), in $dest"
