"""Block registry: type name -> "module:Class". Adding a block = one file + one line here.

Imports are lazy so ``linksim blocks`` and validation stay fast and a broken optional dependency only
affects the blocks that need it.
"""
from __future__ import annotations

import difflib
import importlib

from .errors import UserError

BLOCKS: dict[str, str] = {
    # sources / data
    "dataset": "linksim.data.source:DatasetSource",
    "bit_source": "linksim.data.source:BitSource",
    "pixel_noise": "linksim.data.source:PixelNoise",
    # link: channel coding and mapping (Sionna)
    "qam_mapper": "linksim.link.mapping:QAMMapper",
    "qam_demapper": "linksim.link.mapping:QAMDemapper",
    "ldpc5g_encoder": "linksim.link.ldpc:LDPC5GEncoderBlock",
    "ldpc5g_decoder": "linksim.link.ldpc:LDPC5GDecoderBlock",
    # channels (Sionna)
    "power_normalize": "linksim.channels.power:PowerNormalize",
    "complex_to_real": "linksim.channels.power:ComplexToReal",
    "awgn": "linksim.channels.awgn:AWGNChannel",
    "rayleigh": "linksim.channels.fading:RayleighChannel",
    "rician": "linksim.channels.fading:RicianChannel",
    "bsc": "linksim.channels.bit:BSCChannel",
    "bec": "linksim.channels.bit:BECChannel",
    # semantic transmitters, quantizers and receivers (paper 000, DNRL)
    "semantic_encoder": "linksim.semantic.encoder:SemanticEncoderBlock",
    "feature_quantizer": "linksim.quantizers.feature:FeatureQuantizer",
    "feature_dequantizer": "linksim.quantizers.feature:FeatureDequantizer",
    "label_bits": "linksim.quantizers.labels:LabelBits",
    "bits_label": "linksim.quantizers.labels:BitsLabel",
    "classifier": "linksim.receivers.classifier:ClassifierBlock",
    "feature_sum": "linksim.receivers.fusion:FeatureSum",
    "majority_vote": "linksim.receivers.fusion:MajorityVote",
    # learned JSCC transmitters/receivers (issue 4)
    "jscc_encoder": "linksim.jscc.deep_jscc:JSCCEncoderBlock",
    "jscc_decoder": "linksim.jscc.deep_jscc:JSCCDecoderBlock",
    "smrc_encoder": "linksim.jscc.smrc:SMRCEncoderBlock",
    "smrc_decoder": "linksim.jscc.smrc:SMRCDecoderBlock",
    # analysis of learned representations (paper 000)
    "compactness": "linksim.analysis.compactness:Compactness",
    "maxamp_k_test": "linksim.analysis.maxamp_test:MaxAmpKTest",
    "dissection": "linksim.analysis.dissection:Dissection",
    # SSCC baseline (issue 4)
    "image_codec_encoder": "baselines.sscc:ImageCodecEncoder",
    "image_codec_decoder": "baselines.sscc:ImageCodecDecoder",
    "codec_stats": "baselines.sscc:CodecStats",
    "crc_encoder": "linksim.link.crc:CRCEncoderBlock",
    "crc_decoder": "linksim.link.crc:CRCDecoderBlock",
    # knowledge-base semantic communication (paper 003, issue 5)
    "dataset_split": "linksim.knowledge.splits:DatasetSplit",
    "clip_teacher": "linksim.knowledge.teacher:CLIPTeacher",
    "knowledge_base": "linksim.knowledge.kb:KnowledgeBase",
    "kb_stats": "linksim.knowledge.kb:KBStats",
    "kb_guided_encoder": "linksim.knowledge.ssl.kb_guided:KBGuidedEncoder",
    "simclr_encoder": "linksim.knowledge.ssl.simclr:SimCLREncoder",
    "nnclr_encoder": "linksim.knowledge.ssl.nnclr:NNCLREncoder",
    "dcl_encoder": "linksim.knowledge.ssl.dcl:DCLEncoder",
    "linear_probe": "linksim.knowledge.probe:LinearProbe",
    "topk_accuracy": "linksim.knowledge.probe:TopKAccuracy",
    "vq_encoder": "linksim.knowledge.vqvae:VQEncoder",
    "vq_decoder": "linksim.knowledge.vqvae:VQDecoder",
    # metrics
    "ber": "linksim.metrics.bits:BitErrorRate",
    "bler": "linksim.metrics.bits:BlockErrorRate",
    "accuracy": "linksim.metrics.classification:Accuracy",
    "psnr": "linksim.metrics.image:PSNR",
    "ssim": "linksim.metrics.image:SSIM",
    # OFDM over 3GPP TDL/CDL, channel estimation, MIMO spatial multiplexing (Sionna; issue 13)
    "ofdm_mapper": "linksim.ofdm.grid:OFDMMapper",
    "ofdm_channel": "linksim.ofdm.channel:OFDMChannelBlock",
    "ofdm_estimator": "linksim.ofdm.estimation:OFDMEstimator",
    "ofdm_equalizer": "linksim.ofdm.equalization:OFDMEqualizerBlock",
}


def block_class(type_name: str, where: str | None = None):
    """The class registered under ``type_name``; a UserError naming close matches otherwise."""
    target = BLOCKS.get(type_name)
    if target is None:
        close = difflib.get_close_matches(str(type_name), BLOCKS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `linksim blocks`)"
        raise UserError(f"unknown block type '{type_name}'{hint}", where)
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def describe_params(cls) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) for each parameter of a block class."""
    rows = []
    for name, field in cls.Params.model_fields.items():
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((name, ann, default, field.description or ""))
    return rows
