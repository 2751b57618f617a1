"""Digital link blocks: QAM mapping/demapping and 5G NR LDPC coding (Sionna)."""
