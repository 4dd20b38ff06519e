"""Smaller configs derived from the real ones, one function per class family.

    --scale full    the real architecture (the config as published)
    --scale small   CPU benchmarks: a denoiser step of the order of 100 ms on one core
    --scale tiny    tests: a whole run in seconds on one core

What shrinks and what stays (so that the shrunk model is the same network, smaller):
- depth: fewer transformer layers (at least the structure that names the blocks: the
  U-Net keeps its levels and 2 ResNets per level, multi-layer attention blocks keep 2
  layers; SD3 keeps its context_pre_only last block; Flux keeps double and single blocks;
  Latte keeps spatial/temporal pairs);
- width: fewer attention heads at a fixed head_dim (16 tiny, 32 small), so Ulysses and
  tensor parallelism split heads as they do at full size; MLP ratios, norms, biases, qk
  norms, positional schemes, patch sizes and latent channels are the real ones;
- text encoders: the same classes (CLIP, T5, umT5) with 2 layers and a narrow width; the
  denoiser's text and pooled input widths follow them (SD3's CLIP-L + CLIP-G features
  still fit in the T5 width they are zero-padded to);
- VAEs: the same classes and the same number of levels (so the 8x spatial / 4x temporal
  compression stays), narrow channels, one ResNet per level.
"""
from __future__ import annotations

from dataclasses import dataclass

from .configs import PipelineConfigs

SCALES = ("tiny", "small", "full")


@dataclass(frozen=True)
class Size:
    head_dim: int
    heads: int
    layers: int          # transformer layers of a DiT (pairs for Latte)
    unet_c0: int         # U-Net first-level channels
    unet_cap: int        # U-Net channel multiplier cap
    clip: int            # CLIP text width
    t5: int              # T5 / umT5 d_model
    vae: int             # VAE base channels


SIZES = {"tiny": Size(head_dim=16, heads=4, layers=2, unet_c0=32, unet_cap=2, clip=32, t5=64, vae=8),
         "small": Size(head_dim=32, heads=6, layers=4, unet_c0=64, unet_cap=2, clip=64, t5=128, vae=32)}


@dataclass(frozen=True)
class Defaults:
    """Scenario defaults at a reduced scale (the zoo's defaults are the full ones)."""

    height: int
    width: int
    frames: int
    steps: int
    text: int            # T5-like text tokens (CLIP-only models keep 77)


def scenario_defaults(facts, scale: str) -> Defaults | None:
    if scale == "full":
        return None
    video, unet = facts.arch.startswith("video"), facts.arch == "video-unet"
    # video U-Nets are split by rows like an image (4 levels: 16 latent rows make 2 slices),
    # at 128 px for both scales (their frames multiply an image U-Net's cost)
    side = 128 if unet else {"tiny": 128, "small": 256}[scale] // (2 if video else 1)
    # causal 3D VAEs: 1 + 3 x compression frames (4 latent frames: 13 for 4x, 19 for Mochi's
    # 6x); per-frame VAEs (Latte): 8 frames at tiny, 4 at small (about the tokens of the other
    # models' 4 latent frames); video U-Nets: 2 frames at both scales (a step of SVD at 128 px
    # and 4 frames takes ~600 ms on one core)
    if not video:
        frames = 1
    elif unet:
        frames = 2
    elif facts.vae_temporal > 1:
        frames = 1 + 3 * facts.vae_temporal
    else:
        frames = {"tiny": 8, "small": 4}[scale]
    return Defaults(side, side, frames, 8 if scale == "tiny" else 12, 16 if scale == "tiny" else 32)


# ---------------------------------------------------------------- text encoders
def shrink_clip(cfg: dict, s: Size) -> dict:
    """CLIPTextModel[WithProjection]: 2 layers, width s.clip, a 512-token vocabulary
    (the in-memory tokenizer's: start, pad and end of text are its last three ids), 77
    positions."""
    return cfg | {"hidden_size": s.clip, "intermediate_size": 4 * s.clip, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "projection_dim": s.clip, "vocab_size": 512,
                  "bos_token_id": 509, "pad_token_id": 510, "eos_token_id": 511}


def shrink_bert(cfg: dict, s: Size) -> dict:
    """BertModel (HunyuanDiT's CLIP-like encoder): 2 layers of width s.clip, the in-memory
    tokenizer's 512-token vocabulary."""
    return cfg | {"hidden_size": s.clip, "intermediate_size": 4 * s.clip, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "vocab_size": 512, "pad_token_id": 0}


def shrink_llama(cfg: dict, s: Size) -> dict:
    """LlamaModel (HunyuanVideo's text encoder): 3 layers of width s.t5 (the pipeline reads the
    hidden states 2 layers below the top, so one layer counts), grouped-query attention as
    published (4 query heads, 2 key/value heads), the in-memory tokenizer's vocabulary."""
    return cfg | {"hidden_size": s.t5, "intermediate_size": 2 * s.t5, "num_hidden_layers": 3,
                  "num_attention_heads": s.t5 // 16, "num_key_value_heads": s.t5 // 32, "head_dim": 16,
                  "vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
                  "max_position_embeddings": 4096}


def shrink_clip_vision(cfg: dict, s: Size) -> dict:
    """CLIPVisionModelWithProjection (SVD's image encoder): 2 layers of width s.clip, the real
    224 px input and 14 px patches (the pipeline resizes to 224)."""
    return cfg | {"hidden_size": s.clip, "intermediate_size": 4 * s.clip, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "projection_dim": s.clip}


def shrink_t5(cfg: dict, s: Size) -> dict:
    """T5EncoderModel / UMT5EncoderModel: 2 layers of width s.t5, gated-GELU as published."""
    return cfg | {"d_model": s.t5, "d_ff": 2 * s.t5, "d_kv": 16, "num_heads": s.t5 // 16, "num_layers": 2,
                  "num_decoder_layers": 2, "vocab_size": 512, "relative_attention_num_buckets": 8,
                  "relative_attention_max_distance": 32, "pad_token_id": 0, "eos_token_id": 1}


# ---------------------------------------------------------------- VAEs
def shrink_vae_kl(cfg: dict, s: Size) -> dict:
    """AutoencoderKL: the same 4 levels (8x), s.vae channels, one ResNet per level."""
    levels = len(cfg.get("block_out_channels", [128, 256, 512, 512]))
    return cfg | {"block_out_channels": [s.vae] * levels, "layers_per_block": 1, "norm_num_groups": 4}


def shrink_vae_wan(cfg: dict, s: Size) -> dict:
    """AutoencoderKLWan: base_dim s.vae, one ResNet per level, the same temporal downsampling."""
    return cfg | {"base_dim": s.vae, "num_res_blocks": 1}


def shrink_vae_hunyuanvideo(cfg: dict, s: Size) -> dict:
    """AutoencoderKLHunyuanVideo: the same 4 levels (8x spatial, 4x temporal), s.vae channels,
    one ResNet per level."""
    return cfg | {"block_out_channels": [s.vae] * 4, "layers_per_block": 1, "norm_num_groups": 4}


def shrink_vae_temporal(cfg: dict, s: Size) -> dict:
    """AutoencoderKLTemporalDecoder (SVD): the same 4 levels, 32 channels (its GroupNorms have
    32 groups, fixed in the class), one ResNet per level."""
    return cfg | {"block_out_channels": [max(32, s.vae)] * 4, "layers_per_block": 1}


def shrink_vae_mochi(cfg: dict, s: Size) -> dict:
    """AutoencoderKLMochi: the same 4 decoder levels (8x spatial, 6x temporal), 32 channels
    (its GroupNorms have 32 groups, fixed in the class), one ResNet per level."""
    ch = max(32, s.vae)
    return cfg | {"encoder_block_out_channels": [ch] * 4, "decoder_block_out_channels": [ch] * 4,
                  "layers_per_block": [1] * 5}


def shrink_vae_cog(cfg: dict, s: Size) -> dict:
    """AutoencoderKLCogVideoX: s.vae channels on the same 4 levels, one ResNet per level."""
    return cfg | {"block_out_channels": [s.vae] * 4, "layers_per_block": 1, "norm_num_groups": 4}


# ---------------------------------------------------------------- denoisers
@dataclass(frozen=True)
class Inputs:
    """What the shrunk denoiser must accept: the shrunk text encoders' widths and the
    scenario's text length and latent frames."""

    text_width: int          # encoder_hidden_states features
    pooled: int = 0          # pooled text features (SD3, Flux, SDXL)
    clip_width: int = 0      # the second encoder's features where the denoiser reads both (HunyuanDiT's BERT)
    text_tokens: int = 0
    frames: int = 1          # latent frames


def _width(s: Size) -> dict:
    return {"num_attention_heads": s.heads, "attention_head_dim": s.head_dim}


def shrink_unet(cfg: dict, s: Size, i: Inputs) -> dict:
    """UNet2DConditionModel: every level and block type kept, 2 ResNets per level;
    channels s.unet_c0 x the real multipliers (capped); heads = channels / 16; transformer
    layers per block capped at 2 (SDXL's 1/2/10 -> 1/2/2); GroupNorm 8 groups; SDXL's
    added time ids 8-dim each."""
    real = cfg.get("block_out_channels", [320, 640, 1280, 1280])
    chans = [s.unet_c0 * min(c // real[0], s.unet_cap) for c in real]
    out = cfg | {"block_out_channels": chans, "attention_head_dim": [c // s.head_dim for c in chans],
                 "num_attention_heads": None, "norm_num_groups": 8, "cross_attention_dim": i.text_width}
    layers = cfg.get("transformer_layers_per_block", 1)
    if isinstance(layers, (list, tuple)):
        out["transformer_layers_per_block"] = [min(n, 2) for n in layers]
    if cfg.get("addition_embed_type") == "text_time":
        out["addition_time_embed_dim"] = 8
        out["projection_class_embeddings_input_dim"] = i.pooled + 6 * 8
    return out


def shrink_motion_adapter(cfg: dict, s: Size, unet: dict) -> dict:
    """MotionAdapter: the shrunk U-Net's channels per level (from_unet2d requires them equal),
    its layers per block, 8 GroupNorm groups like the U-Net's; the real head count and
    motion layers."""
    return cfg | {"block_out_channels": list(unet["block_out_channels"]),
                  "motion_layers_per_block": unet.get("layers_per_block", 2), "motion_norm_num_groups": 8}


def shrink_svd(cfg: dict, s: Size, i: Inputs) -> dict:
    """UNetSpatioTemporalConditionModel: every level and block type kept, 2 ResNets per
    level; channels s.unet_c0 x the real multipliers (capped), at least 32 (its GroupNorms
    have 32 groups, fixed in the class); heads = channels / head_dim; one transformer layer
    per block as published; the image encoder's projection width for cross-attention."""
    real = cfg.get("block_out_channels", [320, 640, 1280, 1280])
    chans = [max(32, s.unet_c0 * min(c // real[0], s.unet_cap)) for c in real]
    return cfg | {"block_out_channels": chans, "num_attention_heads": [c // s.head_dim for c in chans],
                  "cross_attention_dim": i.text_width}


def shrink_sd3(cfg: dict, s: Size, i: Inputs) -> dict:
    """SD3Transformer2DModel: s.layers + 1 joint blocks (the last is context_pre_only as in
    the real model), s.heads x s.head_dim; SD3.5's qk norms and dual attention kept."""
    dual = cfg.get("dual_attention_layers") or ()
    return cfg | _width(s) | {"num_layers": s.layers + 1, "joint_attention_dim": i.text_width,
                              "caption_projection_dim": s.heads * s.head_dim, "pooled_projection_dim": i.pooled,
                              "dual_attention_layers": tuple(i for i in dual if i < s.layers + 1)}


def shrink_flux(cfg: dict, s: Size, i: Inputs) -> dict:
    """FluxTransformer2DModel: s.layers // 2 + 1 double-stream and s.layers single-stream
    blocks; the RoPE axes split head_dim as the real (16, 56, 56) of 128 does (1/8 for the
    index axis, the rest halved), in even sizes."""
    rest = (s.head_dim - s.head_dim // 8) // 4 * 2
    return cfg | _width(s) | {"num_layers": s.layers // 2 + 1, "num_single_layers": s.layers,
                              "joint_attention_dim": i.text_width, "pooled_projection_dim": i.pooled,
                              "axes_dims_rope": [s.head_dim - 2 * rest, rest, rest]}


def _pixart_width(s: Size) -> dict:
    """PixArt's head_dim 72 = 3 x 24 keeps the factor 3 that PixArt-alpha's resolution and
    aspect-ratio embedders need (each inner / 3 wide): 3/2 x the scale's head_dim."""
    return {"num_attention_heads": s.heads, "attention_head_dim": s.head_dim * 3 // 2}


def shrink_pixart(cfg: dict, s: Size, i: Inputs) -> dict:
    """PixArtTransformer2DModel: s.layers + 1 blocks; caption projection from the shrunk T5;
    sample_size (hence PixArt-alpha's resolution embedders) as published."""
    w = _pixart_width(s)
    inner = w["num_attention_heads"] * w["attention_head_dim"]
    return cfg | w | {"num_layers": s.layers + 1, "cross_attention_dim": inner, "caption_channels": i.text_width}


def shrink_dit(cfg: dict, s: Size, i: Inputs) -> dict:
    """DiTTransformer2DModel: s.layers + 1 adaLN-zero blocks of s.heads x s.head_dim; the
    1000 ImageNet classes, patch size, sample size and learned variance as published."""
    return cfg | _width(s) | {"num_layers": s.layers + 1}


def shrink_hunyuandit(cfg: dict, s: Size, i: Inputs) -> dict:
    """HunyuanDiT2DModel: 2 x s.layers blocks (an even count keeps the U-ViT skips paired:
    blocks 0 .. L/2-2 push, L/2+1 .. L-1 pop), s.heads x s.head_dim (hidden_size equal to
    it, as published), the MLP ratio rounded so that the hidden features are a multiple of
    16 as the real 6144 = int(1408 x 4.3637) is; the BERT and mT5 widths of the shrunk
    encoders, and as many mT5 tokens as the scenario's text after the BERT's text_len."""
    inner = s.heads * s.head_dim
    ffn = max(16, round(inner * cfg.get("mlp_ratio", 4.0) / 16) * 16)
    return cfg | _width(s) | {"num_layers": 2 * s.layers, "hidden_size": inner, "mlp_ratio": ffn / inner,
                              "cross_attention_dim": i.clip_width,
                              "cross_attention_dim_t5": i.text_width, "pooled_projection_dim": i.clip_width,
                              "text_len_t5": i.text_tokens - cfg.get("text_len", 77)}


def shrink_mochi(cfg: dict, s: Size, i: Inputs) -> dict:
    """MochiTransformer3DModel: s.layers + 1 blocks (the last is context_pre_only as in the
    real model); s.heads x 3/2 s.head_dim, so that the SwiGLU widths 8 x width / 3 of both
    streams stay multiples of 16 as the real 8192 and 4096 are; the text stream half the
    image stream's width (1536 of 3072) and the shrunk T5's width in."""
    inner = s.heads * s.head_dim * 3 // 2
    return cfg | {"num_attention_heads": s.heads, "attention_head_dim": s.head_dim * 3 // 2, "num_layers": s.layers + 1,
                  "pooled_projection_dim": inner // 2, "text_embed_dim": i.text_width,
                  "max_sequence_length": i.text_tokens}


def shrink_hunyuanvideo(cfg: dict, s: Size, i: Inputs) -> dict:
    """HunyuanVideoTransformer3DModel: s.layers // 2 + 1 dual-stream and s.layers
    single-stream blocks, the real 2 token-refiner layers; the RoPE axes split head_dim as the
    real (16, 56, 56) of 128 does (as Flux's); the shrunk LLaMA and CLIP widths in."""
    rest = (s.head_dim - s.head_dim // 8) // 4 * 2
    return cfg | _width(s) | {"num_layers": s.layers // 2 + 1, "num_single_layers": s.layers,
                              "text_embed_dim": i.text_width, "pooled_projection_dim": i.pooled,
                              "rope_axes_dim": [s.head_dim - 2 * rest, rest, rest]}


def shrink_latte(cfg: dict, s: Size, i: Inputs) -> dict:
    """LatteTransformer3DModel (PixArt blocks, the same head_dim rule): s.layers
    spatial/temporal block pairs; its frame-position table is as long as the scenario's
    latent frames (the class adds it whole, so the two must agree)."""
    w = _pixart_width(s)
    inner = w["num_attention_heads"] * w["attention_head_dim"]
    return cfg | w | {"num_layers": s.layers, "cross_attention_dim": inner, "caption_channels": i.text_width,
                      "video_length": i.frames}


def shrink_wan(cfg: dict, s: Size, i: Inputs) -> dict:
    """WanTransformer3DModel: s.layers blocks; FFN at the real ratio (8960 / 1536), rounded
    to 16; sinusoidal timestep features 4 x head_dim wide."""
    inner = s.heads * s.head_dim
    ratio = cfg.get("ffn_dim", 8960) / (cfg.get("num_attention_heads", 12) * cfg.get("attention_head_dim", 128))
    return cfg | _width(s) | {"num_layers": s.layers, "ffn_dim": int(round(ratio * inner / 16)) * 16,
                              "text_dim": i.text_width, "freq_dim": 4 * s.head_dim}


def shrink_cogvideox(cfg: dict, s: Size, i: Inputs) -> dict:
    """CogVideoXTransformer3DModel: s.layers blocks; time embedding 4 x head_dim; the text
    length its joint positional table is laid out for follows the scenario's."""
    return cfg | _width(s) | {"num_layers": s.layers, "time_embed_dim": 4 * s.head_dim,
                              "text_embed_dim": i.text_width, "max_text_seq_length": i.text_tokens}


DENOISERS = {"UNet2DConditionModel": shrink_unet, "SD3Transformer2DModel": shrink_sd3,
             "DiTTransformer2DModel": shrink_dit, "HunyuanDiT2DModel": shrink_hunyuandit,
             "MochiTransformer3DModel": shrink_mochi, "HunyuanVideoTransformer3DModel": shrink_hunyuanvideo,
             "UNetSpatioTemporalConditionModel": shrink_svd,
             "FluxTransformer2DModel": shrink_flux, "PixArtTransformer2DModel": shrink_pixart,
             "LatteTransformer3DModel": shrink_latte, "WanTransformer3DModel": shrink_wan,
             "CogVideoXTransformer3DModel": shrink_cogvideox}
VAES = {"AutoencoderKL": shrink_vae_kl, "AutoencoderKLWan": shrink_vae_wan,
        "AutoencoderKLCogVideoX": shrink_vae_cog, "AutoencoderKLMochi": shrink_vae_mochi,
        "AutoencoderKLHunyuanVideo": shrink_vae_hunyuanvideo, "AutoencoderKLTemporalDecoder": shrink_vae_temporal}
TEXT = {"CLIPTextModel": shrink_clip, "CLIPTextModelWithProjection": shrink_clip,
        "T5EncoderModel": shrink_t5, "UMT5EncoderModel": shrink_t5, "BertModel": shrink_bert,
        "LlamaModel": shrink_llama, "CLIPVisionModelWithProjection": shrink_clip_vision}

FAMILY = {"UNet2DConditionModel": "unet", "SD3Transformer2DModel": "sd3", "FluxTransformer2DModel": "flux",
          "PixArtTransformer2DModel": "pixart", "WanTransformer3DModel": "wan",
          "CogVideoXTransformer3DModel": "cogvideox", "LatteTransformer3DModel": "latte",
          "DiTTransformer2DModel": "dit", "HunyuanDiT2DModel": "hunyuandit",
          "MochiTransformer3DModel": "mochi", "HunyuanVideoTransformer3DModel": "hunyuanvideo",
          "UNetSpatioTemporalConditionModel": "svd"}


# a pipeline component that turns its denoiser class into another family
WITH = {"motion_adapter": "animatediff"}    # UNet2DConditionModel + MotionAdapter -> UNetMotionModel


def family_of(pc: PipelineConfigs) -> str:
    for part, family in WITH.items():
        if part in pc.components:
            return family
    return FAMILY[pc.cls(pc.denoiser)]


# ---------------------------------------------------------------- a whole pipeline
def scaled_configs(pc: PipelineConfigs, scale: str, text_tokens: int, frames: int) -> PipelineConfigs:
    """The pipeline's configs at `scale` (full: as given)."""
    if scale == "full":
        return pc
    size = SIZES[scale]
    comps = dict(pc.components)
    widths = {}
    for name in pc.text_encoders() + [n for n in ("image_encoder",) if n in comps]:
        lib, cls, cfg = comps[name]
        comps[name] = (lib, cls, TEXT[cls](cfg, size))
        widths[name] = comps[name][2]
    fam = family_of(pc)
    lib, cls, cfg = comps["vae"]
    comps["vae"] = (lib, cls, VAES[cls](cfg, size))
    inputs = Inputs(text_width=_text_width(fam, widths), pooled=_pooled(fam, widths),
                    clip_width=_enc_width(widths["text_encoder"]) if fam == "hunyuandit" else 0,
                    text_tokens=text_tokens, frames=frames)
    lib, cls, cfg = comps[pc.denoiser]
    comps[pc.denoiser] = (lib, cls, DENOISERS[cls](cfg, size, inputs))
    if "motion_adapter" in comps:
        lib, cls, cfg = comps["motion_adapter"]
        comps["motion_adapter"] = (lib, cls, shrink_motion_adapter(cfg, size, comps[pc.denoiser][2]))
    return PipelineConfigs(pc.model_id, pc.pipeline, comps, pc.source + f", shrunk to --scale {scale}")


def _enc_width(cfg: dict) -> int:
    return cfg.get("hidden_size") or cfg.get("d_model")


def _text_width(fam: str, enc: dict) -> int:
    if not enc:            # class-conditioned (DiT): no text
        return 0
    if fam in ("unet", "animatediff"):      # SDXL concatenates both CLIP towers' hidden states
        return sum(_enc_width(c) for c in enc.values())
    if fam == "sd3":
        return _enc_width(enc["text_encoder_3"])
    if fam in ("flux", "hunyuandit"):
        return _enc_width(enc["text_encoder_2"])
    if fam == "svd":        # the CLIP image embedding (its projection)
        return enc["image_encoder"]["projection_dim"]
    return _enc_width(enc["text_encoder"])


def _pooled(fam: str, enc: dict) -> int:
    if fam == "sd3":
        return enc["text_encoder"]["projection_dim"] + enc["text_encoder_2"]["projection_dim"]
    if fam == "flux":
        return enc["text_encoder"]["hidden_size"]
    if fam == "hunyuanvideo":      # the CLIP pooler output
        return enc["text_encoder_2"]["hidden_size"]
    if fam == "unet" and "text_encoder_2" in enc:
        return enc["text_encoder_2"]["projection_dim"]
    return 0


