"""Self-supervised local encoders over one shared base (solo-learn style): KB-guided DCL, SimCLR, NNCLR."""
