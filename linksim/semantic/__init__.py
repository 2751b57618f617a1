"""Semantic encoders (backbone + mask-net), contrastive/sparsity losses and CPU training loops."""
