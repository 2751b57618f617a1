"""K of MaxAmp-K for the main job, chosen on validation images (paper 000 sets MaxAmp's K "experimentally, a
value that yielded satisfactory accuracy performance"; this makes that experiment reproducible).

    python scripts/maxamp_k.py [scenarios/distributed_sensing.yaml] [--k 1 2 3 4 5] [--budget 4] [--snr 24]
                               [--set blocks.enc.params.lam=0.03]

The last 10 000 Fashion-MNIST *training* images become a validation split (written as IDX files to --root),
the first 50 000 the training split; the test split is never read. The scenario's `lossless` system (its
encoder, classifiers and quantizer settings) then runs at one node and image SNR --snr with MaxAmp's K swept
(a fresh encoder is trained on the 50 000 images). It prints, per K, the payload and the validation accuracy of
MaxAmp and full-feature fusion, and the smallest K whose accuracy is within --budget points of full features
(Table V's bound for MaxAmp at 24 dB). One node is the worst case: fusion over more nodes narrows the gap.
"""
from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import yaml


def write_idx(path: Path, arr: np.ndarray, magic: int) -> None:
    """An IDX file (the format of the Fashion-MNIST distribution): magic, dimensions, unsigned bytes. linksim
    only reads IDX files, hence this writer."""
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape))
        f.write(np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def validation_root(root: Path, val: int) -> Path:
    """The training split's last ``val`` images as the test split, the others as the training split, written
    under ``root`` with the file names and magic numbers linksim's IDX reader expects."""
    from linksim.data.datasets import _IDX_FILES, _IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC, load_split

    x, y = load_split("fashion_mnist", "train")
    root.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", slice(None, -val)), ("test", slice(-val, None))):
        images, labels = _IDX_FILES[split]
        write_idx(root / f"{images}.gz", x[part, 0], _IDX_IMAGES_MAGIC)
        write_idx(root / f"{labels}.gz", y[part], _IDX_LABELS_MAGIC)
    return root


def main() -> int:
    import linksim

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/distributed_sensing.yaml")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--budget", type=float, default=4.0, help="accuracy points below full features allowed")
    ap.add_argument("--snr", type=float, default=24.0, help="image SNR (dB)")
    ap.add_argument("--val", type=int, default=10_000, help="training images held out for validation")
    ap.add_argument("--root", type=Path, default=Path("/tmp/linksim-fmnist-val"))
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="override of the lossless system, e.g. --set blocks.enc.params.lam=0.03")
    a = ap.parse_args()

    cfg = yaml.safe_load(Path(a.scenario).read_text())
    lossless = cfg["systems"]["lossless"]
    blocks = {k: v for k, v in lossless["blocks"].items()
              if k in ("data", "noise", "enc", "full", "amp")}  # decision fusion and MaxPro are not needed here
    blocks["amp"]["params"]["quantizer"]["K"] = "$maxamp_k"
    cfg["systems"] = {"lossless": {"blocks": blocks, "sweep": {"image_snr_db": [a.snr], "nodes": [1],
                                                               "maxamp_k": list(a.k)}}}
    cfg["include"] = []  # the lossless system uses no library composite
    cfg["plots"] = []
    cfg["quick"] = {}
    cfg["data"]["root"] = str(validation_root(a.root, a.val))
    cfg["name"] = "maxamp_k_validation"
    df = linksim.run(cfg, overrides=[f"systems.lossless.{o}" for o in a.overrides])
    acc = df[df.metric == "accuracy"].pivot_table(index="maxamp_k", columns="scheme", values="value") * 100
    amp = df[(df.metric == "bits_per_node") & (df.scheme == "maxamp")]
    bits = dict(zip(amp.maxamp_k, amp.value))  # the payload the quantizer reports for each K
    print(f"validation: last {a.val} training images, 1 node, image SNR {a.snr:g} dB; accuracy (%)"
          + "".join(f"; {o}" for o in a.overrides))
    print("K  bits  maxamp  full_feature  gap")
    chosen = None
    for k, row in acc.iterrows():
        gap = row["full_feature"] - row["maxamp"]
        print(f"{int(k):<2} {bits[k]:>4g}  {row['maxamp']:6.2f}  {row['full_feature']:12.2f}  {gap:5.2f}")
        if chosen is None and gap <= a.budget:
            chosen = int(k)
    print(f"smallest K within {a.budget:g} points: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
