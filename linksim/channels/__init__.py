"""Channel blocks (Sionna): AWGN, Rayleigh/Rician block fading, bit channels, power normalisation.

SNR convention: ``snr_db`` is Es/N0 in dB per complex channel use; transmitted symbols have unit average
energy, so the complex noise variance is N0 = 10^(-snr_db/10).
"""
