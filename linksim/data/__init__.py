"""Dataset loaders and source blocks."""
