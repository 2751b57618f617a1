"""Quantizers: exact combinatorial index coding and per-feature scalar value quantization."""
