"""Bring a GPU run's shipped checkpoints home: copy their files and merge their manifest entries.

    python scripts/merge_manifest.py OUT_DIR/checkpoints [--names cgan_mnist,vae_mnist,ddpm_mnist]

``OUT_DIR/checkpoints`` is what scripts/gpu_train_q5.sh left: the checkpoint files it shipped and
the GPU machine's whole MANIFEST.json. The local manifest may have changed meanwhile (other
models shipped), so it is not overwritten: for each name in ``--names`` (default: every entry
whose files came back) the files are copied and the entry replaced; for every other entry present
on both sides *with the same weights* (same sha256), the GPU side's metrics are merged in (the GPU
sampling times it measured for the older models). Entries whose weights differ are left alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="folder with the GPU run's MANIFEST.json and checkpoint files")
    p.add_argument("--names", default=None, help="entries to take whole (default: those whose files are there)")
    args = p.parse_args(argv)

    from imagegen_lib.core.checkpoint import sha256_file
    from imagegen_lib.core.manifest import (CHECKPOINT_DIR, _deep_merge, _locked, _write_manifest,
                                            read_manifest)

    theirs = json.loads((args.source / "MANIFEST.json").read_text())["checkpoints"]
    names = args.names.split(",") if args.names else sorted(k for k, v in theirs.items()
                                                             if (args.source / v["file"]).is_file())
    with _locked(CHECKPOINT_DIR):
        ours = read_manifest()
        for name in names:
            entry = theirs[name]
            weights = args.source / entry["file"]
            if sha256_file(weights) != entry["sha256"]:
                raise SystemExit(f"merge_manifest: {weights} does not match its manifest entry (sha256)")
            for f in args.source.glob(f"{name}.*"):
                shutil.copy2(f, CHECKPOINT_DIR / f.name)
            ours["checkpoints"][name] = entry
            print(f"took {name} ({entry['bytes'] / 2**20:.2f} MiB, {len(entry.get('metrics', {}))} metric keys)")
        for name, entry in theirs.items():
            mine = ours["checkpoints"].get(name)
            if name in names or mine is None or mine.get("sha256") != entry.get("sha256"):
                continue
            merged = _deep_merge(mine.get("metrics", {}), entry.get("metrics", {}))
            if merged != mine.get("metrics", {}):
                mine["metrics"] = merged
                print(f"merged the GPU run's metrics of {name}")
        _write_manifest(ours, CHECKPOINT_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
