"""Classical baselines: separate source-channel coding (SSCC) with image codecs (issue 4).

:mod:`baselines.codecs` holds the codecs (HEVC intra via pillow-heif, BPG, JPEG 2000, JPEG);
:mod:`baselines.sscc` the blocks ``image_codec_encoder``, ``image_codec_decoder`` and ``codec_stats``.
"""
