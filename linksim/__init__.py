"""linksim: an end-to-end link simulator for semantic communication.

Blocks (sources, transmitters, channels, receivers, metrics) with typed ports are wired into systems in a
YAML scenario; the graph engine (:mod:`linksim.graph`) runs them batch-wise over SNR / bit-budget sweeps.

Public API (README "Python API" and "Write your own block"):

- ``linksim.run(scenario, out=None, overrides=(), quick=False, seed=None)`` -> pandas DataFrame (the rows of
  results.csv); ``linksim.load(scenario)`` -> the validated scenario; ``linksim.validate(scenario)`` -> None.
  ``scenario`` is a path, a YAML string or a dict; bad input raises :class:`UserError`.
- The block contract: ``Block``, ``Params``, ``Port``, ``Spec``, ``Metric``, ``expect`` and helpers, so that
  ``type: "package.module:Class"`` or a ``linksim.blocks`` entry point can add blocks from outside.

Names are imported on first use, so ``import linksim`` stays light (no torch, no Sionna).
"""

__version__ = "0.1.0"

# name -> module that defines it (imported lazily, PEP 562)
_EXPORTS = {
    "run": "api", "load": "api", "validate": "api",
    "Block": "block", "Params": "block", "Port": "block", "Spec": "block", "Metric": "block",
    "expect": "block", "Impairment": "block", "ModelState": "block", "TrainData": "block", "KINDS": "block",
    "IN_TRAINING": "block", "LABEL": "block", "labelled": "block",
    "UserError": "errors", "PortError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linksim' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(f"linksim.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
