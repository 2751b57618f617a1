"""Example linksim plugin: ``phase_noise`` (channel) and ``learned_tx`` / ``learned_rx`` (a learned pair)."""
