"""linksim: an end-to-end link simulator for semantic communication.

Blocks (sources, transmitters, channels, receivers, metrics) with typed ports are wired into systems in a
YAML scenario; the graph engine (:mod:`linksim.graph`) runs them batch-wise over SNR / bit-budget sweeps.
"""

__version__ = "0.1.0"
