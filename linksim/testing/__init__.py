"""Test tooling: a harness that drives single blocks, the block-mutant check and the reference curves."""
