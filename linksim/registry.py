"""Block registry: type name -> "module:Class". Adding a block = one file + one line here.

Imports are lazy so ``linksim blocks`` and validation stay fast and a broken optional dependency only
affects the blocks that need it.

Blocks from outside the package (README "Write your own block"):

- ``type: "package.module:Class"`` imports any importable :class:`~linksim.block.Block` subclass;
- an installed distribution adds named blocks through the entry-point group ``linksim.blocks``
  (``name = "module:Class"``). Built-in names win: an entry point named like a built-in block is ignored
  (``linksim blocks`` reports it); two distributions giving one name different targets make that name an
  error (write ``module:Class`` instead).

Any failure (no such module, an import error inside the plugin, no such class, not a Block) is a
:class:`~linksim.errors.UserError` naming the YAML key, so validation finds it before anything runs.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import re

from .errors import UserError

ENTRY_POINT_GROUP = "linksim.blocks"
_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$", re.ASCII)

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
    """The class of a block type: a built-in name, a ``linksim.blocks`` entry point, or ``module:Class``.
    Anything that cannot be loaded is a UserError (one line, naming ``where``)."""
    if not isinstance(type_name, str):
        raise UserError(f"a block type is a name or 'package.module:Class', got {type_name!r}", where)
    target = BLOCKS.get(type_name)
    if target is not None:  # linksim's own code: a failure here is a bug (or a missing extra), not bad input
        module, cls = target.split(":")
        return getattr(importlib.import_module(module), cls)
    if ":" in type_name:
        return _load(type_name, type_name, where)
    plugin = plugins().get(type_name)
    if plugin is not None:
        if plugin.error:
            raise UserError(f"block type '{type_name}': {plugin.error}", where)
        return _load(plugin.target, type_name, where, f" (entry point of {plugin.dist})")
    close = difflib.get_close_matches(str(type_name), [*BLOCKS, *plugins()], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see `linksim blocks`)"
    raise UserError(f"unknown block type '{type_name}'{hint}; a block of your own is written "
                    f"'package.module:Class'", where)


def _load(target: str, type_name: str, where: str | None, origin: str = ""):
    """Import ``module:Class`` and check it is a Block; every failure is one line naming ``where``."""
    from .block import Block

    if target in _loaded:
        return _loaded[target]
    what = f"block type '{type_name}'{origin}"
    if not _TARGET.match(target):
        raise UserError(f"{what}: '{target}' is not 'package.module:Class'", where)
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise UserError(f"{what}: no module named '{e.name}' (is it installed, or its folder on "
                            f"PYTHONPATH?)", where) from None
        raise UserError(f"{what}: importing '{module_name}' failed: {_cause(e)}", where) from None
    except Exception as e:  # anything the plugin's own code raises while it is imported
        raise UserError(f"{what}: importing '{module_name}' failed: {_cause(e)}", where) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Block)]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(f"{what}: module '{module_name}' has no '{attr}'{hint}", where)
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Block)):
        kind = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise UserError(f"{what}: '{target}' is {kind}, not a subclass of linksim.Block", where)
    problem = contract_problem(obj)
    if problem:
        raise UserError(f"{what}: '{target}' {problem}", where)
    _loaded[target] = obj
    return obj


_loaded: dict[str, type] = {}  # targets imported and checked once per process


def contract_problem(cls) -> str | None:
    """What is wrong with a Block subclass's declarations (None when they fit the contract)."""
    import pydantic

    from .block import Block, Port

    if not (isinstance(cls.Params, type) and issubclass(cls.Params, pydantic.BaseModel)):
        return "has a Params that is not a pydantic model (subclass linksim.Params)"
    if not isinstance(cls.inputs, dict) or not all(isinstance(v, Port) for v in cls.inputs.values()):
        return "declares inputs that are not a dict of port name -> linksim.Port"
    if not isinstance(cls.outputs, dict) or not all(isinstance(k, str) for k in cls.outputs):
        return "declares outputs that are not a dict of port name -> description"
    if cls.setup is Block.setup:
        return "does not define setup(specs) (it returns the Spec of every output)"
    if cls.trainable and (cls.fit is Block.fit):
        return "is trainable but does not define fit(data, ctx)"
    return None


def _cause(e: BaseException) -> str:
    """``Type: message (file:line)`` of an exception raised inside a plugin, without the traceback."""
    import traceback

    loc = ""
    if isinstance(e, SyntaxError) and e.filename:
        loc = f" ({e.filename}:{e.lineno})"
    else:
        frames = traceback.extract_tb(e.__traceback__)
        outside = [f for f in frames if "importlib" not in f.filename]
        if outside:
            loc = f" ({outside[-1].filename}:{outside[-1].lineno})"
    text = " ".join(str(e).split())[:300]
    return f"{type(e).__name__}: {text}{loc}" if text else f"{type(e).__name__}{loc}"


# ------------------------------------------------------------------------------------- entry points
class Plugin:
    """One block name added by installed distributions (``linksim.blocks`` entry points)."""

    def __init__(self, name: str, target: str, dist: str):
        self.name, self.target, self.dist = name, target, dist
        self.error: str | None = None  # set when distributions disagree on the target
        self.shadowed = name in BLOCKS  # a built-in of that name wins


@functools.lru_cache(maxsize=1)
def _entry_points() -> tuple[tuple[str, str, str], ...]:
    from importlib import metadata

    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        label = f"package '{dist.name}' {dist.version}" if dist is not None else "an unknown package"
        out.append((ep.name, ep.value.split("[")[0].strip(), label))
    return tuple(out)


def all_plugins() -> dict[str, Plugin]:
    """Every ``linksim.blocks`` entry point by name, shadowed ones (named like a built-in) included."""
    found: dict[str, Plugin] = {}
    for name, target, dist in _entry_points():
        have = found.get(name)
        if have is None:
            found[name] = Plugin(name, target, dist)
        elif have.target != target:
            have.error = (f"'{name}' is defined by {have.dist} ({have.target}) and by {dist} ({target}); "
                          f"write the one you mean as 'module:Class'")
    return found


def plugins() -> dict[str, Plugin]:
    """The entry-point blocks a scenario can use by name (built-in names win)."""
    return {k: v for k, v in all_plugins().items() if not v.shadowed}


def refresh_plugins() -> None:
    """Forget the cached entry points (after installing a package in a running interpreter)."""
    _entry_points.cache_clear()


def describe_params(cls) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) for each parameter of a block class."""
    rows = []
    for name, field in cls.Params.model_fields.items():
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((name, ann, default, field.description or ""))
    return rows
