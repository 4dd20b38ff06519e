"""VAE decoders: the conv stacks that turn the final latent into pixels, run once.

Every decoder is built from its diffusers class's config (AutoencoderKL, AutoencoderKL-
TemporalDecoder, AutoencoderKLCogVideoX, AutoencoderKLHunyuanVideo, AutoencoderKLWan,
AutoencoderKLMochi; Open-Sora 1.2's pipeline from its repository's config) and follows the
frame bookkeeping of the default decode path: conv
caches make chunked causal decoding cost the same as one pass, but HunyuanVideo's default
framewise tiling decodes overlapping 5-latent-frame tiles, which we model tile by tile.
`VAES` maps each class to (defaults, compression(cfg) -> (spatial, temporal), decoder(cfg, grid)).
Conv `tokens` are output positions (frames x rows x cols); 3x3x3 convs have 27 taps;
1x1(x1) convs are GEMMs.
"""
from __future__ import annotations

import dataclasses

import math
from collections import Counter

from planner.spec import Op, Component
from planner.zoo.hub import Cfg, ZooError
from planner.zoo.layers import Grid, attention, conv, ew, linear, norm


def _resnet(p: str, tok: int, cin: int, cout: int, taps: int, *, norm_w: int = 2,
            zq: int = 0, bias: bool = True) -> list[Op]:
    """norm -> SiLU -> conv -> norm -> SiLU -> conv, plus a 1x1 shortcut when the width
    changes. norm_w: affine weights per channel (2 group norm, 1 RMS norm); zq: CogVideoX
    spatial norm, whose scale and bias come from 1x1 convs of the zq-channel latent."""
    ops: list[Op] = []
    for i, (c_in, c_out) in enumerate(((cin, cout), (cout, cout)), 1):
        ops.append(norm(f"{p}.norm{i}", tok, c_in, params=norm_w * c_in))
        if zq:
            ops += [linear(f"{p}.norm{i}.conv_y", tok, zq, c_in),
                    linear(f"{p}.norm{i}.conv_b", tok, zq, c_in)]
        ops += [ew(f"{p}.act{i}", tok, c_in),
                conv(f"{p}.conv{i}", tok, c_in, c_out, taps, "col" if i == 1 else "row", bias=bias)]
    if cin != cout:
        ops.append(linear(f"{p}.shortcut", tok, cin, cout, bias=bias))
    ops.append(ew(f"{p}.add", tok, cout, 3))
    return ops


def _attn(p: str, seq: int, dim: int, groups: int = 1, *, norm_w: int = 2,
          fused: bool = False) -> list[Op]:
    """Single-head attention over `seq` positions (the VAE mid block)."""
    rows = seq * groups
    proj = ([linear(f"{p}.to_qkv", rows, dim, 3 * dim, "col")] if fused else
            [linear(f"{p}.to_{c}", rows, dim, dim, "col") for c in "qkv"])
    return [norm(f"{p}.norm", rows, dim, params=norm_w * dim), *proj,
            attention(f"{p}.sdpa", seq, 1, dim, groups=groups),
            linear(f"{p}.to_out", rows, dim, dim, "row"), ew(f"{p}.add", rows, dim, 3)]


def _component(name: str, ops: list[Op]) -> Component:
    return Component(name, tuple(ops), sum(o.params for o in ops))


# ---------------------------------------------------------------- 2D (per frame)
def sd_ops(cfg: Cfg, lh: int, lw: int, frames: int = 1, *, temporal: bool = False, p: str = "") -> list[Op]:
    """AutoencoderKL decoder (SD/SDXL/SD3/Flux: block_out 128/256/512/512, layers_per_block + 1
    ResNets per up block, one single-head attention at latent resolution), run on every frame.
    temporal=True turns it into SVD's TemporalDecoder: each ResNet gains a (3,1,1)
    temporal ResNet and a learned mixing weight, and a (3,1,1) conv follows conv_out."""
    up_channels = tuple(reversed(cfg["block_out_channels"]))   # decoder up blocks, deepest first
    latent, resnets = cfg["latent_channels"], cfg["layers_per_block"] + 1
    h, w = lh, lw
    tok = frames * h * w
    post_quant = not temporal and cfg.get("use_post_quant_conv", True)
    ops = [linear(f"{p}post_quant_conv", tok, latent, latent)] if post_quant else []
    ops.append(conv(f"{p}conv_in", tok, latent, up_channels[0], 9))

    def res(name: str, cin: int, cout: int) -> list[Op]:
        out = _resnet(name, frames * h * w, cin, cout, 9)
        if temporal:   # TemporalResnetBlock (in = out) + AlphaBlender
            out += _resnet(f"{name}.temporal", frames * h * w, cout, cout, 3)
            out.append(ew(f"{name}.time_mixer", frames * h * w, cout, 3, params=1))
        return out

    c = up_channels[0]
    ops += res(f"{p}mid.res0", c, c)
    if temporal or cfg.get("mid_block_add_attention", True):
        ops += _attn(f"{p}mid.attn", h * w, c, frames)
    ops += res(f"{p}mid.res1", c, c)
    for i, cout in enumerate(up_channels):
        for j in range(resnets):
            ops += res(f"{p}up{i}.res{j}", c, cout)
            c = cout
        if i < len(up_channels) - 1:
            src = frames * h * w
            h, w = 2 * h, 2 * w
            ops.append(conv(f"{p}up{i}.upsample", frames * h * w, c, c, 9, in_tokens=src))
    tok = frames * h * w
    ops += [norm(f"{p}norm_out", tok, c, params=2 * c), ew(f"{p}act_out", tok, c),
            conv(f"{p}conv_out", tok, c, cfg.get("out_channels", 3), 9)]
    if temporal:
        ops.append(conv(f"{p}time_conv_out", tok, 3, 3, 3))
    return ops


def _pixels(n: int) -> str:
    return f" x {n} frames" if n > 1 else ""


def sd_decoder(cfg: Cfg, g: Grid, per_frame: bool = False) -> Component:
    """AutoencoderKL; per_frame: a video pipeline decodes every pixel frame with it (Latte,
    AnimateDiff)."""
    frames = g.frames if per_frame else 1
    return _component(f"SD VAE decoder ({cfg['latent_channels']}-ch latent){_pixels(frames)}",
                  sd_ops(cfg, g.lh, g.lw, frames))


def svd_decoder(cfg: Cfg, g: Grid) -> Component:
    return _component("SVD temporal VAE decoder", sd_ops(cfg, g.lh, g.lw, g.lf, temporal=True))


def _scale(cfg: Cfg, key: str) -> int:
    return 2 ** (len(cfg[key]) - 1)


# ---------------------------------------------------------------- causal 3D decoders
def _cog_batches(lf: int) -> list[int]:
    """CogVideoX decodes 2 latent frames at a time, the first batch taking the odd one."""
    n = max(lf // 2, 1)
    return [2 + lf % 2 if i == 0 else 2 for i in range(n)] if lf > 1 else [lf]


def _time_up(frames: int) -> int:
    """Causal temporal x2 upsampling: the first frame stays single."""
    return 1 + 2 * (frames - 1) if frames > 1 else 1


def cogvideox_decoder(cfg: Cfg, g: Grid) -> Component:
    """CogVideoXDecoder3D: causal 3x3x3 convs, spatial norms conditioned on the latent, up
    blocks (reversed block_out: 512/256/256/128) of layers_per_block + 1 ResNets, 2D 3x3
    upsampling convs; the first log2(temporal_compression_ratio) upsamplers also double time
    (per 2-frame decode batch, the odd first frame alone). The mid block has 2 ResNets."""
    batches, z = _cog_batches(g.lf), cfg["latent_channels"]
    up_channels, resnets = tuple(reversed(cfg["block_out_channels"])), cfg["layers_per_block"] + 1
    time_ups = int(math.log2(cfg["temporal_compression_ratio"]))
    f, h, w = g.lf, g.lh, g.lw
    c = up_channels[0]
    ops = [conv("conv_in", f * h * w, z, c, 27)]
    for j in range(2):
        ops += _resnet(f"mid.res{j}", f * h * w, c, c, 27, zq=z)
    for i, cout in enumerate(up_channels):
        for j in range(resnets):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, cout, 27, zq=z)
            c = cout
        if i < len(up_channels) - 1:
            src = f * h * w
            if i < time_ups:
                batches = [_time_up(b) if b % 2 else 2 * b for b in batches]
                f = sum(batches)
            h, w = 2 * h, 2 * w
            ops.append(conv(f"up{i}.upsample", f * h * w, c, c, 9, in_tokens=src))
    tok = f * h * w
    ops += [norm("norm_out", tok, c, params=2 * c), linear("norm_out.conv_y", tok, z, c),
            linear("norm_out.conv_b", tok, z, c), ew("act_out", tok, c),
            conv("conv_out", tok, c, cfg["out_channels"], 27)]
    return _component("CogVideoX causal 3D VAE decoder", ops)


def _hunyuan_tile(cfg: Cfg, lf: int, lh: int, lw: int, n: int, p: str) -> list[Op]:
    """One HunyuanVideo decoder pass over an lf-frame tile, for n equal tiles."""
    z, up_channels = cfg["latent_channels"], tuple(reversed(cfg["block_out_channels"]))
    resnets = cfg["layers_per_block"] + 1
    space_ups = int(math.log2(cfg["spatial_compression_ratio"]))
    time_ups = int(math.log2(cfg["temporal_compression_ratio"]))
    f, h, w = lf, lh, lw
    c = up_channels[0]
    ops = [linear(f"{p}post_quant_conv", n * f * h * w, z, z), conv(f"{p}conv_in", n * f * h * w, z, c, 27)]
    ops += _resnet(f"{p}mid.res0", n * f * h * w, c, c, 27)
    if cfg["mid_block_add_attention"]:
        ops += _attn(f"{p}mid.attn", f * h * w, c, n)     # causal mask, computed in full
    ops += _resnet(f"{p}mid.res1", n * f * h * w, c, c, 27)
    last = len(up_channels) - 1
    for i, cout in enumerate(up_channels):
        for j in range(resnets):
            ops += _resnet(f"{p}up{i}.res{j}", n * f * h * w, c, cout, 27)
            c = cout
        # as diffusers' HunyuanVideoDecoder3D: x2 space in the first log2(spatial) blocks,
        # x2 time in the log2(temporal) blocks before the last
        space, time = i < space_ups, last - 1 - time_ups < i < last
        if space or time:
            src = n * f * h * w
            f = _time_up(f) if time else f
            h, w = (2 * h, 2 * w) if space else (h, w)
            ops.append(conv(f"{p}up{i}.upsample", n * f * h * w, c, c, 27, in_tokens=src))
    tok = n * f * h * w
    ops += [norm(f"{p}norm_out", tok, c, params=2 * c), ew(f"{p}act_out", tok, c),
            conv(f"{p}conv_out", tok, c, cfg["out_channels"], 27)]
    return ops


# diffusers' AutoencoderKLHunyuanVideo framewise decoding (a runtime default, not in the
# config): sample tiles of 16 frames every 12 = latent tiles of 4 + 1 frames every 3
HUNYUAN_TILE, HUNYUAN_STRIDE = 5, 3


def hunyuan_decoder(cfg: Cfg, g: Grid) -> Component:
    """AutoencoderKLHunyuanVideo decode with its default framewise tiling: latent tiles
    of 4+1 frames every 3 frames (sample tiles 16/stride 12), each decoded in full, the
    overlap blended. Equal-sized tiles are merged into one set of ops (n x tokens for
    convs, n attention groups); the weights are counted once."""
    lf = g.lf
    sizes = (Counter(min(HUNYUAN_TILE, lf - i) for i in range(0, lf, HUNYUAN_STRIDE)) if lf > HUNYUAN_TILE - 1
             else Counter([lf]))
    ops: list[Op] = []
    ordered = sorted(sizes.items(), reverse=True)
    for k, (size, n) in enumerate(ordered):
        tile = _hunyuan_tile(cfg, size, g.lh, g.lw, n, f"tile{size}x{n}." if len(sizes) > 1 else "")
        ops += tile if k == 0 else [o.scaled(params=0) for o in tile]
    # the largest tile group's n tiles decode one after another (one live at a time);
    # enable_tiling adds spatial tiles of 256 px every 192 (tile_sample_min_height/width,
    # tile_sample_stride_height/width in autoencoder_kl_hunyuan_video.py)
    return dataclasses.replace(_component("HunyuanVideo causal 3D VAE decoder", ops), tiles=ordered[0][1],
                               tile_px=256, stride_px=192)


def wan_decoder(cfg: Cfg, g: Grid) -> Component:
    """WanDecoder3d (base_dim 96, dim_mult 1/2/4/4): RMS norms, causal 3x3x3 convs, per-frame
    single-head attention in the mid block, up blocks (384/384/192/96) of num_res_blocks + 1
    ResNets whose 2D upsamplers halve the width; the blocks whose temperal_upsample
    (= reversed temperal_downsample) is set also run a (3,1,1) time conv to 2x channels
    that doubles every latent frame but the first."""
    if cfg["attn_scales"] or cfg["is_residual"] or cfg["patch_size"]:
        raise ZooError(f"{cfg.where}: attn_scales / is_residual / patch_size (Wan 2.2 VAEs) are not supported "
                       f"(accepted: [], false, null)")
    base = cfg["decoder_base_dim"] or cfg["base_dim"]
    mult, z = list(cfg["dim_mult"]), cfg["z_dim"]
    dims = [base * m for m in [mult[-1]] + mult[::-1]]
    time_up = list(reversed(cfg["temperal_downsample"]))
    f, h, w = g.lf, g.lh, g.lw
    c = dims[0]
    ops = [linear("post_quant_conv", f * h * w, z, z), conv("conv_in", f * h * w, z, c, 27)]
    ops += _resnet("mid.res0", f * h * w, c, c, 27, norm_w=1)
    ops += _attn("mid.attn", h * w, c, f, norm_w=1, fused=True)
    ops += _resnet("mid.res1", f * h * w, c, c, 27, norm_w=1)
    for i, cout in enumerate(dims[1:]):
        for j in range(cfg["num_res_blocks"] + 1):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, cout, 27, norm_w=1)
            c = cout
        if i < len(mult) - 1:
            if time_up[i]:
                ops.append(conv(f"up{i}.time_conv", (f - 1) * h * w, c, 2 * c, 3))
                f = _time_up(f)
            src = f * h * w
            h, w = 2 * h, 2 * w
            ops.append(conv(f"up{i}.upsample", f * h * w, c, c // 2, 9, in_tokens=src))
            c //= 2
    tok = f * h * w
    ops += [norm("norm_out", tok, c, params=c), ew("act_out", tok, c),
            conv("conv_out", tok, c, cfg["out_channels"], 27)]
    return _component("Wan2.1 causal 3D VAE decoder", ops)


def mochi_decoder(cfg: Cfg, g: Grid) -> Component:
    """MochiDecoder3D (non-framewise default): 1x1x1 conv_in latent -> widest, ResNets, then
    up blocks (6/4/3 ResNets at 768/512/256) whose linear projection unshuffles to the
    temporal (x3/x2/x1) and spatial (x2) expansions, ResNets at the narrowest width and a
    linear to RGB. Causal 3x3x3 convs, no shortcuts (widths change only in the projections)."""
    out = list(cfg["decoder_block_out_channels"])           # narrowest first
    per = list(cfg["layers_per_block"])                       # ResNets: block_out, up blocks (narrow first), block_in
    t_exp, s_exp = list(cfg["temporal_expansions"])[::-1], list(cfg["spatial_expansions"])[::-1]
    f, h, w = g.lf, g.lh, g.lw
    ops = [linear("conv_in", f * h * w, cfg["latent_channels"], out[-1])]
    for j in range(per[-1]):
        ops += _resnet(f"block_in.res{j}", f * h * w, out[-1], out[-1], 27)
    for i in range(len(out) - 1):
        c, cout, st, sp = out[-1 - i], out[-2 - i], t_exp[i], s_exp[i]
        for j in range(per[-2 - i]):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, c, 27)
        ops.append(linear(f"up{i}.proj", f * h * w, c, cout * st * sp * sp))
        f, h, w = f * st, sp * h, sp * w
    for j in range(per[0]):
        ops += _resnet(f"block_out.res{j}", f * h * w, out[0], out[0], 27)
    ops += [ew("act_out", f * h * w, out[0]), linear("proj_out", f * h * w, out[0], cfg["out_channels"])]
    return _component("Mochi 3D VAE decoder", ops)


def opensora12_decoder(cfg: Cfg, g: Grid) -> Component:
    """Open-Sora 1.2 VideoAutoencoderPipeline, from opensora/models/vae/vae_temporal.py
    (VAE_Temporal_SD; models.csv has no numbers for it): the temporal VAE decoder (causal
    3x3x3 convs at latent resolution: conv latent -> filters x the last multiplier, num_res_blocks
    ResNets without conv biases, then blocks of num_res_blocks ResNets at the reversed
    multipliers, depth-to-time x2 convs after the blocks whose reversed temporal_downsample
    is set), decoding 17-frame micro-batches (5 latent -> 20 frames, 3 dropped), followed by
    the SDXL 2D decoder on every output frame."""
    t = cfg.sub("vae_temporal", "VAE_Temporal_SD")
    spatial = cfg.sub("vae_2d", "AutoencoderKL")
    z, filters, n = t["latent_embed_dim"], t["filters"], t["num_res_blocks"]
    widths = [filters * m for m in reversed(t["channel_multipliers"])]
    time_up = list(reversed(t["temporal_downsample"])) + [False]
    f, h, w = g.lf, g.lh, g.lw
    c = widths[0]
    ops = [linear("temporal.post_quant_conv", f * h * w, z, z), conv("temporal.conv_in", f * h * w, z, c, 27)]
    for j in range(n):
        ops += _resnet(f"temporal.mid.res{j}", f * h * w, c, c, 27, bias=False)
    for i, cout in enumerate(widths):
        for j in range(n):
            ops += _resnet(f"temporal.up{i}.res{j}", f * h * w, c, cout, 27, bias=False)
            c = cout
        if time_up[i]:
            ops.append(conv(f"temporal.up{i}.time_conv", f * h * w, c, 2 * c, 27))
            f *= 2
    tok = f * h * w
    ops += [norm("temporal.norm_out", tok, c, params=2 * c), ew("temporal.act_out", tok, c),
            conv("temporal.conv_out", tok, c, t["in_out_channels"], 27)]
    ops += sd_ops(Cfg("AutoencoderKL", spatial.values, spatial.where, {"layers_per_block": 2}), g.lh, g.lw,
                  g.frames, p="spatial.")
    return _component("Open-Sora 1.2 VAE decoder (temporal + SDXL 2D)", ops)


def _mochi_t(cfg: Cfg) -> int:
    return math.prod(cfg["temporal_expansions"])


# __init__ defaults of the keys read here (diffusers 0.42.1 src/diffusers/models/autoencoders/*)
KL_DEFAULTS = {"block_out_channels": (64,), "layers_per_block": 1, "latent_channels": 4, "out_channels": 3,
               "use_post_quant_conv": True, "mid_block_add_attention": True}
TEMPORAL_DEFAULTS = {"block_out_channels": (64,), "layers_per_block": 1, "latent_channels": 4, "out_channels": 3}
COG_DEFAULTS = {"block_out_channels": (128, 256, 256, 512), "layers_per_block": 3, "latent_channels": 16,
                "out_channels": 3, "temporal_compression_ratio": 4}
HUNYUAN_DEFAULTS = {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 16,
                    "out_channels": 3, "spatial_compression_ratio": 8, "temporal_compression_ratio": 4,
                    "mid_block_add_attention": True}
WAN_DEFAULTS = {"base_dim": 96, "decoder_base_dim": None, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                "attn_scales": [], "temperal_downsample": [False, True, True], "is_residual": False,
                "out_channels": 3, "patch_size": None}
MOCHI_DEFAULTS = {"out_channels": 3, "decoder_block_out_channels": (128, 256, 512, 768), "latent_channels": 12,
                  "layers_per_block": (3, 3, 4, 6, 3), "temporal_expansions": (1, 2, 3),
                  "spatial_expansions": (2, 2, 2)}

# class -> (defaults, (spatial, temporal) compression, decoder)
VAES = {
    "AutoencoderKL": (KL_DEFAULTS, lambda c: (_scale(c, "block_out_channels"), 1), sd_decoder),
    "AutoencoderKLTemporalDecoder": (TEMPORAL_DEFAULTS, lambda c: (_scale(c, "block_out_channels"), 1), svd_decoder),
    "AutoencoderKLCogVideoX": (COG_DEFAULTS, lambda c: (_scale(c, "block_out_channels"),
                                                        c["temporal_compression_ratio"]), cogvideox_decoder),
    "AutoencoderKLHunyuanVideo": (HUNYUAN_DEFAULTS, lambda c: (c["spatial_compression_ratio"],
                                                               c["temporal_compression_ratio"]), hunyuan_decoder),
    "AutoencoderKLWan": (WAN_DEFAULTS, lambda c: (2 ** (len(c["dim_mult"]) - 1), 2 ** sum(c["temperal_downsample"])),
                         wan_decoder),
    "AutoencoderKLMochi": (MOCHI_DEFAULTS, lambda c: (math.prod(c["spatial_expansions"]), _mochi_t(c)),
                           mochi_decoder),
    "OpenSoraVAE_V1_2": ({}, lambda c: (2 ** (len(c["vae_2d"]["block_out_channels"]) - 1),
                                        2 ** sum(c["vae_temporal"]["temporal_downsample"])), opensora12_decoder),
}
