"""Receiver blocks: classifiers and fusion centres."""
