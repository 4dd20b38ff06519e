"""VAE decoders: the conv stacks that turn the final latent into pixels, run once.

Every decoder is written from its diffusers class (AutoencoderKL, AutoencoderKLTemporal-
Decoder, AutoencoderKLCogVideoX, AutoencoderKLHunyuanVideo, AutoencoderKLWan,
AutoencoderKLMochi) and follows the frame bookkeeping of the default decode path: conv
caches make chunked causal decoding cost the same as one pass, but HunyuanVideo's default
framewise tiling decodes overlapping 5-latent-frame tiles, which we model tile by tile.
Decoders are cached by their sizes (Stages are immutable).
Conv `tokens` are output positions (frames x rows x cols); 3x3x3 convs have 27 taps;
1x1(x1) convs are GEMMs.
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache

from planner.spec import Op, Stage
from planner.zoo.layers import attention, conv, ew, linear, norm

SD_CHANNELS = (512, 512, 256, 128)   # decoder up blocks, deepest first


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


def _stage(name: str, ops: list[Op]) -> Stage:
    return Stage(name, tuple(ops), sum(o.params for o in ops))


# ---------------------------------------------------------------- 2D (per frame)
def sd_ops(latent: int, lh: int, lw: int, frames: int = 1, *, post_quant: bool = True,
           temporal: bool = False, p: str = "") -> list[Op]:
    """AutoencoderKL decoder of SD/SDXL/SD3/Flux (block_out 128/256/512/512, 2+1 ResNets
    per up block, one single-head attention at latent resolution), run on every frame.
    temporal=True turns it into SVD's TemporalDecoder: each ResNet gains a (3,1,1)
    temporal ResNet and a learned mixing weight, and a (3,1,1) conv follows conv_out."""
    h, w = lh, lw
    tok = frames * h * w
    ops = [linear(f"{p}post_quant_conv", tok, latent, latent)] if post_quant else []
    ops.append(conv(f"{p}conv_in", tok, latent, SD_CHANNELS[0], 9))

    def res(name: str, cin: int, cout: int) -> list[Op]:
        out = _resnet(name, frames * h * w, cin, cout, 9)
        if temporal:   # TemporalResnetBlock (in = out) + AlphaBlender
            out += _resnet(f"{name}.temporal", frames * h * w, cout, cout, 3)
            out.append(ew(f"{name}.time_mixer", frames * h * w, cout, 3, params=1))
        return out

    c = SD_CHANNELS[0]
    ops += res(f"{p}mid.res0", c, c) + _attn(f"{p}mid.attn", h * w, c, frames) + res(f"{p}mid.res1", c, c)
    for i, cout in enumerate(SD_CHANNELS):
        for j in range(3):
            ops += res(f"{p}up{i}.res{j}", c, cout)
            c = cout
        if i < len(SD_CHANNELS) - 1:
            src = frames * h * w
            h, w = 2 * h, 2 * w
            ops.append(conv(f"{p}up{i}.upsample", frames * h * w, c, c, 9, in_tokens=src))
    tok = frames * h * w
    ops += [norm(f"{p}norm_out", tok, c, params=2 * c), ew(f"{p}act_out", tok, c),
            conv(f"{p}conv_out", tok, c, 3, 9)]
    if temporal:
        ops.append(conv(f"{p}time_conv_out", tok, 3, 3, 3))
    return ops


@lru_cache(maxsize=64)
def sd_decoder(latent: int, lh: int, lw: int, frames: int = 1, *, post_quant: bool = True) -> Stage:
    per = f" x {frames} frames" if frames > 1 else ""
    return _stage(f"SD VAE decoder ({latent}-ch latent){per}",
                  sd_ops(latent, lh, lw, frames, post_quant=post_quant))


@lru_cache(maxsize=64)
def svd_decoder(lh: int, lw: int, frames: int) -> Stage:
    return _stage("SVD temporal VAE decoder", sd_ops(4, lh, lw, frames, post_quant=False, temporal=True))


# ---------------------------------------------------------------- causal 3D decoders
def _cog_batches(lf: int) -> list[int]:
    """CogVideoX decodes 2 latent frames at a time, the first batch taking the odd one."""
    n = max(lf // 2, 1)
    return [2 + lf % 2 if i == 0 else 2 for i in range(n)] if lf > 1 else [lf]


def _time_up(frames: int) -> int:
    """Causal temporal x2 upsampling: the first frame stays single."""
    return 1 + 2 * (frames - 1) if frames > 1 else 1


@lru_cache(maxsize=64)
def cogvideox_decoder(lf: int, lh: int, lw: int) -> Stage:
    """CogVideoXDecoder3D: causal 3x3x3 convs, spatial norms conditioned on the 16-ch
    latent, up blocks 512/256/256/128 of 4 ResNets, 2D 3x3 upsampling convs; the first
    two upsamplers also double time (per 2-frame decode batch, the odd first frame alone)."""
    batches, z = _cog_batches(lf), 16
    f, h, w = lf, lh, lw
    ops = [conv("conv_in", f * h * w, z, 512, 27)]
    for j in range(2):
        ops += _resnet(f"mid.res{j}", f * h * w, 512, 512, 27, zq=z)
    c = 512
    for i, cout in enumerate((512, 256, 256, 128)):
        for j in range(4):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, cout, 27, zq=z)
            c = cout
        if i < 3:
            src = f * h * w
            if i < 2:
                batches = [_time_up(b) if b % 2 else 2 * b for b in batches]
                f = sum(batches)
            h, w = 2 * h, 2 * w
            ops.append(conv(f"up{i}.upsample", f * h * w, c, c, 9, in_tokens=src))
    tok = f * h * w
    ops += [norm("norm_out", tok, c, params=2 * c), linear("norm_out.conv_y", tok, z, c),
            linear("norm_out.conv_b", tok, z, c), ew("act_out", tok, c),
            conv("conv_out", tok, c, 3, 27)]
    return _stage("CogVideoX causal 3D VAE decoder", ops)


def _hunyuan_tile(lf: int, lh: int, lw: int, n: int, p: str) -> list[Op]:
    """One HunyuanVideo decoder pass over an lf-frame tile, for n equal tiles."""
    f, h, w = lf, lh, lw
    ops = [linear(f"{p}post_quant_conv", n * f * h * w, 16, 16),
           conv(f"{p}conv_in", n * f * h * w, 16, 512, 27)]
    ops += _resnet(f"{p}mid.res0", n * f * h * w, 512, 512, 27)
    ops += _attn(f"{p}mid.attn", f * h * w, 512, n)     # causal mask, computed in full
    ops += _resnet(f"{p}mid.res1", n * f * h * w, 512, 512, 27)
    c = 512
    for i, cout in enumerate((512, 512, 256, 128)):
        for j in range(3):
            ops += _resnet(f"{p}up{i}.res{j}", n * f * h * w, c, cout, 27)
            c = cout
        if i < 3:   # x2 space in blocks 0-2, x2 time in blocks 1-2
            src = n * f * h * w
            f = _time_up(f) if i >= 1 else f
            h, w = 2 * h, 2 * w
            ops.append(conv(f"{p}up{i}.upsample", n * f * h * w, c, c, 27, in_tokens=src))
    tok = n * f * h * w
    ops += [norm(f"{p}norm_out", tok, c, params=2 * c), ew(f"{p}act_out", tok, c),
            conv(f"{p}conv_out", tok, c, 3, 27)]
    return ops


@lru_cache(maxsize=64)
def hunyuan_decoder(lf: int, lh: int, lw: int) -> Stage:
    """AutoencoderKLHunyuanVideo decode with its default framewise tiling: latent tiles
    of 4+1 frames every 3 frames (sample tiles 16/stride 12), each decoded in full, the
    overlap blended. Equal-sized tiles are merged into one set of ops (n x tokens for
    convs, n attention groups); the weights are counted once."""
    sizes = Counter(min(5, lf - i) for i in range(0, lf, 3)) if lf > 4 else Counter([lf])
    ops: list[Op] = []
    for k, (size, n) in enumerate(sorted(sizes.items(), reverse=True)):
        tile = _hunyuan_tile(size, lh, lw, n, f"tile{size}x{n}." if len(sizes) > 1 else "")
        ops += tile if k == 0 else [o.scaled(params=0) for o in tile]
    return _stage("HunyuanVideo causal 3D VAE decoder", ops)


@lru_cache(maxsize=64)
def wan_decoder(lf: int, lh: int, lw: int) -> Stage:
    """WanDecoder3d (base 96, mults 1/2/4/4): RMS norms, causal 3x3x3 convs, per-frame
    single-head attention in the mid block, up blocks 384/384/192/96 of 3 ResNets whose
    2D upsamplers halve the width; the first two also run a (3,1,1) time conv to 2x
    channels that doubles every latent frame but the first."""
    f, h, w = lf, lh, lw
    ops = [linear("post_quant_conv", f * h * w, 16, 16), conv("conv_in", f * h * w, 16, 384, 27)]
    ops += _resnet("mid.res0", f * h * w, 384, 384, 27, norm_w=1)
    ops += _attn("mid.attn", h * w, 384, f, norm_w=1, fused=True)
    ops += _resnet("mid.res1", f * h * w, 384, 384, 27, norm_w=1)
    c = 384
    for i, cout in enumerate((384, 384, 192, 96)):
        for j in range(3):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, cout, 27, norm_w=1)
            c = cout
        if i < 3:
            if i < 2:
                ops.append(conv(f"up{i}.time_conv", (f - 1) * h * w, c, 2 * c, 3))
                f = _time_up(f)
            src = f * h * w
            h, w = 2 * h, 2 * w
            ops.append(conv(f"up{i}.upsample", f * h * w, c, c // 2, 9, in_tokens=src))
            c //= 2
    tok = f * h * w
    ops += [norm("norm_out", tok, c, params=c), ew("act_out", tok, c), conv("conv_out", tok, c, 3, 27)]
    return _stage("Wan2.1 causal 3D VAE decoder", ops)


@lru_cache(maxsize=64)
def mochi_decoder(lf: int, lh: int, lw: int) -> Stage:
    """MochiDecoder3D (non-framewise default): 1x1x1 conv_in 12->768, 3 ResNets, then up
    blocks (6/4/3 ResNets at 768/512/256) whose linear projection unshuffles to x3/x2/x1
    time and x2 space, 3 ResNets at 128 and a linear to RGB. Causal 3x3x3 convs, no
    shortcuts (widths change only in the projections)."""
    f, h, w = lf, lh, lw
    ops = [linear("conv_in", f * h * w, 12, 768)]
    for j in range(3):
        ops += _resnet(f"block_in.res{j}", f * h * w, 768, 768, 27)
    for i, (c, n, cout, st) in enumerate(((768, 6, 512, 3), (512, 4, 256, 2), (256, 3, 128, 1))):
        for j in range(n):
            ops += _resnet(f"up{i}.res{j}", f * h * w, c, c, 27)
        ops.append(linear(f"up{i}.proj", f * h * w, c, cout * st * 4))
        f, h, w = f * st, 2 * h, 2 * w
    for j in range(3):
        ops += _resnet(f"block_out.res{j}", f * h * w, 128, 128, 27)
    ops += [ew("act_out", f * h * w, 128), linear("proj_out", f * h * w, 128, 3)]
    return _stage("Mochi 3D VAE decoder", ops)


@lru_cache(maxsize=64)
def opensora12_decoder(lf: int, lh: int, lw: int, frames: int) -> Stage:
    """Open-Sora 1.2 VideoAutoencoderPipeline, from opensora/models/vae/vae_temporal.py
    (VAE_Temporal_SD; models.csv has no numbers for it): the temporal VAE decoder (causal
    3x3x3 convs at latent resolution on the 4-ch SDXL latent: conv 4->512, 4 ResNets
    without conv biases, then blocks 512/256/256/128 of 4 ResNets, depth-to-time x2 convs
    after the 512 and first 256 block), decoding 17-frame micro-batches (5 latent -> 20
    frames, 3 dropped), followed by the SDXL 2D decoder on every output frame."""
    f, h, w = lf, lh, lw
    ops = [linear("temporal.post_quant_conv", f * h * w, 4, 4),
           conv("temporal.conv_in", f * h * w, 4, 512, 27)]
    for j in range(4):
        ops += _resnet(f"temporal.mid.res{j}", f * h * w, 512, 512, 27, bias=False)
    c = 512
    for i, (cout, t_up) in enumerate(((512, True), (256, True), (256, False), (128, False))):
        for j in range(4):
            ops += _resnet(f"temporal.up{i}.res{j}", f * h * w, c, cout, 27, bias=False)
            c = cout
        if t_up:
            ops.append(conv(f"temporal.up{i}.time_conv", f * h * w, c, 2 * c, 27))
            f *= 2
    tok = f * h * w
    ops += [norm("temporal.norm_out", tok, c, params=2 * c), ew("temporal.act_out", tok, c),
            conv("temporal.conv_out", tok, c, 4, 27)]
    ops += sd_ops(4, lh, lw, frames, p="spatial.")
    return _stage("Open-Sora 1.2 VAE decoder (temporal + SDXL 2D)", ops)
