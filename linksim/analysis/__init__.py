"""Analysis sinks for learned representations: compactness, MaxAmp-K classification test, dissection."""
