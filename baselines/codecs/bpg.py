"""Real BPG through Fabrice Bellard's ``bpgenc``/``bpgdec`` command-line tools, when they are on PATH.

Same quality scale as :mod:`baselines.codecs.heif`: quality q in 0..51 -> ``bpgenc -q (51 - q)`` (the HEVC
QP). Grey images are written as grey PNGs (BPG grayscale format), colour with ``-f 444`` (or ``-f 420``);
bpgenc pads to its block size and signals the crop itself. What is counted: the whole ``.bpg`` file (BPG's
own header: format byte, colour-space byte, ue7 width/height/picture length, compacted SPS; then the HEVC
data) except the constant 4-byte magic ``BPG\\xfb``, which the receiver restores. The file ends with HEVC
data (non-zero RBSP stop bit), so the link's zero padding is removable. ``available()`` is False when either
tool is missing; the ``image_codec_encoder`` block then stops at setup with a clear message.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .base import Codec, DecodeError, as_hwc, check_decoded

MAGIC = b"BPG\xfb"


class BPGCodec(Codec):
    """BPG via bpgenc/bpgdec subprocesses; payload = .bpg file without its 4-byte magic."""

    name = "bpg"
    qualities = range(0, 52)  # bpgenc -q = 51 - quality

    @classmethod
    def available(cls) -> bool:
        return shutil.which("bpgenc") is not None and shutil.which("bpgdec") is not None

    @classmethod
    def unavailable_reason(cls) -> str:
        missing = [t for t in ("bpgenc", "bpgdec") if shutil.which(t) is None]
        return (f"codec 'bpg' needs {' and '.join(missing)} on PATH (libbpg, https://bellard.org/bpg/; "
                f"Debian/Ubuntu: apt-get install libbpg-tools or build libbpg); codec 'heif' codes the same "
                f"HEVC intra pictures through pillow-heif")

    def versions(self) -> dict:
        try:
            r = subprocess.run(["bpgenc", "-h"], capture_output=True, text=True, timeout=10)
            first = (r.stdout or r.stderr).splitlines()[0] if (r.stdout or r.stderr) else ""
        except (OSError, subprocess.TimeoutExpired):
            first = ""
        return {"bpgenc": first}

    def encode(self, img, quality):
        from PIL import Image

        img = as_hwc(img)
        if quality not in self.qualities:
            raise ValueError(f"bpg quality must be in 0..51, got {quality}")
        with tempfile.TemporaryDirectory(prefix="linksim_bpg_") as tmp:
            src, out = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
            Image.fromarray(img).save(src)
            cmd = ["bpgenc", "-q", str(51 - quality), "-b", "8", "-o", str(out), str(src)]
            if img.ndim == 3:
                cmd[1:1] = ["-f", self.chroma]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0 or not out.is_file():
                raise RuntimeError(f"bpgenc failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
            data = out.read_bytes()
        if not data.startswith(MAGIC):
            raise RuntimeError("bpgenc output does not start with the BPG magic")
        return data[len(MAGIC):]

    def decode(self, data, shape):
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="linksim_bpg_") as tmp:
            src, out = Path(tmp) / "in.bpg", Path(tmp) / "out.png"
            src.write_bytes(MAGIC + data)
            r = subprocess.run(["bpgdec", "-o", str(out), str(src)], capture_output=True, text=True)
            if r.returncode != 0 or not out.is_file():
                raise DecodeError(f"bpgdec: {r.stderr.strip() or r.stdout.strip() or r.returncode}")
            with Image.open(out) as im:
                im = im.convert("L" if len(shape) == 2 else "RGB")
                arr = np.asarray(im)
        return check_decoded(arr, tuple(shape))
