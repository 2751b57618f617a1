"""Knowledge-base semantic communication (paper 003, CRLSC): teacher, SKB/PKB, KB-guided encoders, VQ-VAE."""
