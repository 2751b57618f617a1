"""Run context shared by the blocks of one run: device, seeds, data configuration, weight cache."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts (stable across runs and machines)."""
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def deterministic() -> None:
    """torch's deterministic algorithms, so that the same seed trains the same weights on one machine. Without
    them, e.g. the backward pass of indexing with repeated indices (``table[labels]``, a VQ codebook lookup)
    accumulates with atomic float adds across threads on CPU: measured, 30 backward passes gave 30 different
    gradients with 2 threads, and a knowledge_base teacher trained twice ended on different losses.
    ``warn_only``: an op without a deterministic implementation warns instead of stopping the run."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for deterministic GEMMs
    if not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True, warn_only=True)


def reseed(seed: int) -> None:
    """Seed every RNG a block may draw from: Python, NumPy, torch and Sionna's global generators (and switch
    torch to its deterministic algorithms)."""
    deterministic()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    from sionna.phy import config as sionna_config

    sionna_config.seed = seed


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from .errors import UserError

        raise UserError("--device cuda was requested but no CUDA device is available")
    return name


class WeightCache:
    """Trained block states keyed by a hash; in memory and on disk (``torch.load(weights_only=True)``).

    Each file holds a header with the SHA-256 of its payload, written to a temporary file and renamed into
    place, so a reader (another run sharing the cache) never sees half an entry, and a damaged entry is
    detected on load: it is reported, retrained and replaced. A full or read-only cache folder costs only
    the caching (a warning), never the run."""

    MAGIC = b"linksim-weights-v1\n"

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None
        self.mem: dict[str, dict] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _warn(msg: str) -> None:
        import sys

        print(f"linksim: warning: {msg}", file=sys.stderr, flush=True)

    def _read(self, f: Path) -> dict | None:
        try:
            blob = f.read_bytes()
        except OSError as e:
            self._warn(f"weight cache entry {f} cannot be read ({e.strerror or e}); retraining")
            return None
        head = len(self.MAGIC) + 65
        digest = blob[len(self.MAGIC):head - 1].decode("ascii", "replace")
        payload = blob[head:]
        if not blob.startswith(self.MAGIC) or hashlib.sha256(payload).hexdigest() != digest:
            self._warn(f"weight cache entry {f} is damaged or of an older format (hash mismatch); "
                       "retraining and replacing it")
            return None
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as e:  # verified bytes that torch cannot load: written by an incompatible version
            self._warn(f"weight cache entry {f} cannot be loaded ({type(e).__name__}); retraining")
            return None

    def get(self, key: str) -> dict | None:
        if key in self.mem:
            self.hits += 1
            return self.mem[key]
        if self.root is not None:
            f = self.root / f"{key}.pt"
            if f.is_file():
                state = self._read(f)
                if state is not None:
                    self.mem[key] = state
                    self.hits += 1
                    return state
        self.misses += 1
        return None

    def put(self, key: str, state: dict) -> None:
        self.mem[key] = state
        if self.root is None:
            return
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(self.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.root / f"{key}.pt")
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            self._warn(f"cannot write weight cache entry {self.root / (key + '.pt')} ({e.strerror or e}); "
                       "the weights stay in memory for this run only")


def default_cache_dir() -> Path:
    return Path(os.environ.get("LINKSIM_CACHE", Path.home() / ".cache" / "linksim"))


@dataclasses.dataclass
class RunContext:
    device: str = "cpu"
    seed: int = 0
    data: Any = None  # scenario DataCfg
    quick: bool = False
    cache: WeightCache | None = None
    progress: bool = False
    where: str = ""
    batch: Any = None  # graph.BatchInfo during a batch
    point: dict = dataclasses.field(default_factory=dict)
    system: str | None = None  # the system being run (summaries are recorded as "system/block")
    shared: dict = dataclasses.field(default_factory=dict)  # per-run memo (loaded datasets, ...)

    def record(self, name: str, summary: dict, section: str = "training", keep_existing: bool = False) -> None:
        """Put a block's summary (training, knowledge base, ...) into run.json's ``section``, keyed
        ``system/block`` so that blocks of the same name in different systems stay apart; with
        ``keep_existing`` an entry already there (e.g. the run's own training) is left as it is."""
        key = f"{self.system}/{name}" if self.system else name
        entries = self.shared.setdefault("run_info", {}).setdefault(section, {})
        if not (keep_existing and key in entries):
            entries[key] = summary

    lines: bool = False  # stderr is not a terminal: one progress line per trained block / finished point
    training_key: str | None = None  # YAML key of the block being trained (for the training loop's errors)
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def log(self, msg: str) -> None:
        if self.progress:
            print(f"[linksim] {msg}", file=sys.stderr, flush=True)

    def say(self, msg: str) -> None:
        """A progress line (off a terminal, where there are no bars), with the run's elapsed time."""
        if self.lines:
            print(f"[linksim {time.perf_counter() - self.started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    def timing(self) -> dict:
        return self.shared.setdefault("timing", {"training_s": {}, "evaluation_s": 0.0})

    def trained(self, name: str, type_name: str, seconds: float) -> None:
        """Called by the engine after a block was trained: seconds per block type, one progress line."""
        t = self.timing()["training_s"]
        t[type_name] = t.get(type_name, 0.0) + seconds
        key = f"{self.system}/{name}" if self.system else name
        summ = self.shared.get("run_info", {}).get("training", {}).get(key, {})
        how = f", {summ['epochs']} epochs, stopped by {summ['stopped_by']}" if "stopped_by" in summ else ""
        self.say(f"trained {key} ({type_name}) in {seconds:.1f} s{how}")
