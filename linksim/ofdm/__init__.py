"""OFDM links on Sionna's blocks (issue 13): resource grid mapping (``grid``), 3GPP TDL/CDL and flat channels
(``channel``), LS / perfect channel estimation (``estimation``), LMMSE / ZF equalisation back to data symbols
with their effective noise variance (``equalization``). MIMO spatial multiplexing is the same chain with
``num_streams`` > 1 layers at the transmitter and ``num_rx_ant`` antennas at the receiver.

The mapper defines the grid; it travels to the downstream OFDM blocks in the port metadata (``Spec.meta``
key ``ofdm``), so a scenario states FFT size, pilots, etc. once. ``reference``: Sionna's own OFDM pipeline
(tests, benchmark); ``report``: Es/N0 at a target BER/BLER and the LS - perfect CSI gap of a run.
"""
