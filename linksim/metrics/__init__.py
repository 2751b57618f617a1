"""Metric sinks: BER/BLER, classification accuracy/recall/precision, image PSNR/SSIM."""
