"""Reference models: small diffusion denoisers the executor builds in torch (executor/models/)
from the same configs this module describes to the planner, block for block.

    ref-dit-*     PixArt-like DiT: adaLN-single, self-attention, cross-attention to text
    ref-mmdit-*   SD3-like MM-DiT: text and image streams in one joint attention
    ref-unet-*    SD-like U-Net: ResNet blocks (GroupNorm, SiLU, 3x3 convs), down/up
                  sampling, transformer blocks with self- and cross-attention, long skips
    ref-video-*   Latte-like video DiT with factorised spatial / temporal attention
                  (the only kind of model DSP applies to)

"tiny" presets are for tests (seconds on one CPU core); "s" presets are large enough that
compute dominates communication on a CPU host, for benchmarks. The weights are random with
a fixed seed and the text conditioning is a fixed random embedding, so nothing is
downloaded. There are no text encoders or VAE: the executor times the denoising loop
(scope "denoise"), so the ModelSpec carries an empty VAE stage.

Torch-free on purpose: the planner imports it. The torch modules mirror `build` exactly
(same blocks in the same order, same parameters), which tests/test_executor_models.py
checks by counting parameters and FLOPs of the torch modules.
"""
from __future__ import annotations

from dataclasses import dataclass

from planner.spec import ModelFacts, Component
from planner.zoo.layers import (Grid, attention, block, conv, cross_attn, ew, linear, mlp, norm, qkv,
                                self_attn, spec, timestep_mlp)


# ---------------------------------------------------------------- configs
@dataclass(frozen=True)
class DiTConfig:
    hidden: int
    depth: int
    heads: int
    text_dim: int          # width of the (random) text embeddings
    freq: int = 256        # sinusoidal timestep features
    mlp_ratio: int = 4


@dataclass(frozen=True)
class MMDiTConfig:
    hidden: int
    depth: int
    heads: int
    text_dim: int
    pooled_dim: int        # width of the pooled text vector (SD3's CLIP pooled output)
    freq: int = 256
    mlp_ratio: int = 4


@dataclass(frozen=True)
class UNetConfig:
    channels: tuple[int, ...]   # per resolution level, finest first
    layers: int                 # ResNet (+ transformer) layers per down level (up: layers + 1)
    heads: int                  # attention heads in every transformer block
    groups: int                 # GroupNorm groups
    text_dim: int
    attn: tuple[bool, ...] = () # transformer blocks per level (default: every level)

    def has_attn(self, level: int) -> bool:
        return self.attn[level] if self.attn else True


@dataclass(frozen=True)
class VideoDiTConfig:
    hidden: int
    depth: int             # spatial + temporal block pairs
    heads: int
    text_dim: int
    freq: int = 256
    mlp_ratio: int = 4


@dataclass(frozen=True)
class Preset:
    name: str
    arch: str              # dit | mmdit | unet | video-dit
    config: object
    height: int
    width: int
    steps: int
    text_tokens: int
    channels: int          # latent channels
    patch: int
    frames: int = 1


PRESETS: dict[str, Preset] = {
    "ref-dit-tiny": Preset("reference DiT tiny (PixArt-like)", "dit",
                           DiTConfig(hidden=64, depth=4, heads=4, text_dim=32, freq=32), 128, 128, 8, 8, 4, 2),
    "ref-dit-s": Preset("reference DiT S (PixArt-like)", "dit",
                        DiTConfig(hidden=384, depth=8, heads=6, text_dim=256), 256, 256, 12, 32, 4, 2),
    "ref-mmdit-tiny": Preset("reference MM-DiT tiny (SD3-like)", "mmdit",
                             MMDiTConfig(hidden=64, depth=3, heads=4, text_dim=32, pooled_dim=32, freq=32),
                             128, 128, 8, 8, 16, 2),
    "ref-mmdit-s": Preset("reference MM-DiT S (SD3-like)", "mmdit",
                          MMDiTConfig(hidden=384, depth=6, heads=6, text_dim=256, pooled_dim=256),
                          256, 256, 12, 32, 16, 2),
    "ref-unet-tiny": Preset("reference U-Net tiny (SD-like)", "unet",
                            UNetConfig(channels=(32, 64), layers=1, heads=4, groups=8, text_dim=32),
                            128, 128, 8, 8, 4, 1),
    "ref-unet-s": Preset("reference U-Net S (SD-like)", "unet",
                         UNetConfig(channels=(128, 256), layers=1, heads=4, groups=32, text_dim=256),
                         256, 256, 12, 32, 4, 1),
    "ref-video-tiny": Preset("reference video DiT tiny (Latte-like, factorised attention)", "video-dit",
                             VideoDiTConfig(hidden=64, depth=2, heads=4, text_dim=32, freq=32), 64, 64, 8, 8, 4, 2,
                             frames=8),
    "ref-video-s": Preset("reference video DiT S (Latte-like, factorised attention)", "video-dit",
                          VideoDiTConfig(hidden=256, depth=4, heads=4, text_dim=128), 128, 128, 12, 16, 4, 2,
                          frames=8),
}

SOURCE = ("reference model of the executor (planner/zoo/reference.py, executor/models/): random "
          "weights with a fixed seed; sizes chosen for this project, not a published checkpoint")


def _facts(mid: str, p: Preset) -> ModelFacts:
    return ModelFacts(id=mid, name=p.name, arch=p.arch, family="reference", cfg_default=True,
                      default_height=p.height, default_width=p.width, default_frames=p.frames,
                      default_steps=p.steps, text_tokens=p.text_tokens, vae_spatial=8, vae_temporal=1,
                      latent_channels=p.channels, patch=p.patch, flow_matching=p.arch == "mmdit",
                      factorised_attention=p.arch == "video-dit", long_skips=p.arch == "unet",
                      source=SOURCE)


REFERENCE_FACTS: dict[str, ModelFacts] = {mid: _facts(mid, p) for mid, p in PRESETS.items()}

NO_VAE = Component("none (executor runs time the denoising loop only)", (), 0)


# ---------------------------------------------------------------- shared pieces
def _patch_embed(g: Grid, cin: int, dim: int) -> list:
    """Conv with kernel = stride = patch, then the fixed sin-cos position add."""
    n, taps = g.tokens, g.patch * g.patch
    return [conv("patch_embed", n, cin, dim, taps, in_tokens=n * taps), ew("pos_embed", n, dim, 3)]


def _final(g: Grid, dim: int, out_ch: int, table: int) -> list:
    """LayerNorm without affine -> shift/scale -> linear to patch*patch*out_ch."""
    n = g.tokens
    return [norm("norm_out", n, dim), ew("modulate_out", n, dim, 2, params=table),
            linear("proj_out", n, dim, g.patch * g.patch * out_ch)]


def _adaln_block(p: str, seq: int, groups: int, dim: int, heads: int, ffn: int, text: int) -> list:
    """PixArt block: norm -> modulate (learned 6 x dim table + the shared timestep vector) ->
    self-attention -> gated add -> [cross-attention to the text -> add] -> norm -> modulate ->
    GELU MLP -> gated add. Attention runs over `groups` sequences of `seq` tokens."""
    rows, hd = seq * groups, dim // heads
    ops = [norm(f"{p}.norm1", rows, dim), ew(f"{p}.modulate1", rows, dim, 2, params=6 * dim),
           *self_attn(f"{p}.attn1", seq, dim, heads, hd, groups=groups), ew(f"{p}.gate_add1", rows, dim, 3)]
    if text:
        ops += [*cross_attn(f"{p}.attn2", seq, dim, heads, hd, text, dim, groups=groups),
                ew(f"{p}.add2", rows, dim, 3)]
    ops += [norm(f"{p}.norm2", rows, dim), ew(f"{p}.modulate2", rows, dim, 2),
            *mlp(f"{p}.ff", rows, dim, ffn), ew(f"{p}.gate_add2", rows, dim, 3)]
    return ops


def _adaln_single_embed(g: Grid, c, channels: int) -> list:
    """Patch embed, timestep MLP + the shared adaLN-single projection, caption projection."""
    d, t = c.hidden, g.text
    return (_patch_embed(g, channels, d) + timestep_mlp("t_embedder", c.freq, d)
            + [ew("t_act", 1, d), linear("t_block", 1, d, 6 * d),
               linear("caption_proj.linear_1", t, c.text_dim, d, text=True), ew("caption_proj.act", t, d, text=True),
               linear("caption_proj.linear_2", t, d, d, text=True)])


# ---------------------------------------------------------------- DiT (PixArt-like)
def _dit(f: ModelFacts, g: Grid, c: DiTConfig):
    n, d = g.tokens, c.hidden
    blocks = [block("embed", "embed", _adaln_single_embed(g, c, f.latent_channels), n, d)]
    blocks += [block(f"block{i}", "transformer",
                     _adaln_block(f"block{i}", n, 1, d, c.heads, c.mlp_ratio * d, g.text), n, d)
               for i in range(c.depth)]
    out = g.patch * g.patch * f.latent_channels
    blocks.append(block("final", "head", _final(g, d, f.latent_channels, 2 * d), n, out))
    return spec(f, g, blocks, [], NO_VAE)


# ---------------------------------------------------------------- MM-DiT (SD3-like)
def _joint_block(p: str, n: int, t: int, d: int, heads: int, ffn: int) -> list:
    """SD3 joint block: each stream has its own adaLN-zero modulation (from the shared
    conditioning vector), norms, Q/K/V, output projection and MLP; one attention runs over
    [text; image] tokens together."""
    hd = d // heads
    ops = [ew(f"{p}.act_c", 1, d), linear(f"{p}.norm1.linear", 1, d, 6 * d),
           linear(f"{p}.norm1_context.linear", 1, d, 6 * d),
           norm(f"{p}.norm1", n, d), ew(f"{p}.modulate1", n, d, 2),
           norm(f"{p}.norm1_context", t, d, text=True), ew(f"{p}.modulate1_context", t, d, 2, text=True),
           *qkv(f"{p}.attn", n, d, d), *qkv(f"{p}.attn.add", t, d, d, text=True),
           attention(f"{p}.attn.sdpa", n, heads, hd, ctx=t, q_ctx=t),
           linear(f"{p}.attn.to_out", n, d, d, "row"), linear(f"{p}.attn.to_add_out", t, d, d, "row", text=True),
           ew(f"{p}.gate_add1", n, d, 3), ew(f"{p}.gate_add1_context", t, d, 3, text=True),
           norm(f"{p}.norm2", n, d), ew(f"{p}.modulate2", n, d, 2),
           norm(f"{p}.norm2_context", t, d, text=True), ew(f"{p}.modulate2_context", t, d, 2, text=True),
           *mlp(f"{p}.ff", n, d, ffn), *mlp(f"{p}.ff_context", t, d, ffn, text=True),
           ew(f"{p}.gate_add2", n, d, 3), ew(f"{p}.gate_add2_context", t, d, 3, text=True)]
    return ops


def _mmdit(f: ModelFacts, g: Grid, c: MMDiTConfig):
    n, t, d = g.tokens, g.text, c.hidden
    embed = (_patch_embed(g, f.latent_channels, d)
             + [linear("context_embedder", t, c.text_dim, d, text=True)]
             + timestep_mlp("t_embedder", c.freq, d)
             + [linear("pooled_embedder.linear_1", 1, c.pooled_dim, d), ew("pooled_embedder.act", 1, d),
                linear("pooled_embedder.linear_2", 1, d, d), ew("c_add", 1, d, 3)])
    blocks = [block("embed", "embed", embed, n, d)]
    blocks += [block(f"joint{i}", "transformer", _joint_block(f"joint{i}", n, t, d, c.heads, c.mlp_ratio * d), n, d)
               for i in range(c.depth)]
    out = g.patch * g.patch * f.latent_channels
    head = [ew("norm_out.act", 1, d), linear("norm_out.linear", 1, d, 2 * d)] + _final(g, d, f.latent_channels, 0)
    blocks.append(block("final", "head", head, n, out))
    return spec(f, g, blocks, [], NO_VAE)


# ---------------------------------------------------------------- U-Net (SD-like)
def _resnet(p: str, n: int, cin: int, cout: int, temb: int) -> list:
    """GroupNorm -> SiLU -> 3x3 conv (col) -> + projected timestep -> GroupNorm -> SiLU ->
    3x3 conv (row) -> + shortcut (1x1 conv when the width changes)."""
    ops = [norm(f"{p}.norm1", n, cin, params=2 * cin), ew(f"{p}.act1", n, cin),
           conv(f"{p}.conv1", n, cin, cout, 9, "col"),
           ew(f"{p}.temb_act", 1, temb), linear(f"{p}.time_emb_proj", 1, temb, cout, "col"),
           ew(f"{p}.temb_add", n, cout, 3),
           norm(f"{p}.norm2", n, cout, params=2 * cout), ew(f"{p}.act2", n, cout),
           conv(f"{p}.conv2", n, cout, cout, 9, "row")]
    if cin != cout:
        ops.append(conv(f"{p}.conv_shortcut", n, cin, cout, 1))
    return ops + [ew(f"{p}.add", n, cout, 3)]


def _transformer(p: str, n: int, ch: int, heads: int, text: int, text_dim: int) -> list:
    """GroupNorm -> proj_in -> [LayerNorm -> self-attn -> add; LayerNorm -> cross-attn -> add;
    LayerNorm -> GELU MLP -> add] -> proj_out -> add the block input."""
    hd = ch // heads
    return [norm(f"{p}.norm", n, ch, params=2 * ch), linear(f"{p}.proj_in", n, ch, ch),
            norm(f"{p}.norm1", n, ch, params=2 * ch), *self_attn(f"{p}.attn1", n, ch, heads, hd),
            ew(f"{p}.add1", n, ch, 3),
            norm(f"{p}.norm2", n, ch, params=2 * ch), *cross_attn(f"{p}.attn2", n, ch, heads, hd, text, text_dim),
            ew(f"{p}.add2", n, ch, 3),
            norm(f"{p}.norm3", n, ch, params=2 * ch), *mlp(f"{p}.ff", n, ch, 4 * ch), ew(f"{p}.add3", n, ch, 3),
            linear(f"{p}.proj_out", n, ch, ch), ew(f"{p}.add_res", n, ch, 3)]


@dataclass(frozen=True)
class UNetBlock:
    """One block of the U-Net in order; push: its output goes on the skip stack; pop: it
    concatenates the top of the stack to its input (cin counts both)."""
    name: str
    kind: str       # embed | resnet | transformer | downsample | upsample | head
    level: int      # resolution level of its output (0 = full latent resolution)
    cin: int
    cout: int
    push: bool = False
    pop: bool = False


def unet_layout(c: UNetConfig, channels: int) -> list[UNetBlock]:
    """The U-Net's blocks with the skip stack's bookkeeping, done once here for both the
    spec and the torch module (diffusers UNet2DConditionModel order)."""
    levels, c0 = len(c.channels), c.channels[0]
    out = [UNetBlock("embed", "embed", 0, channels, c0, push=True)]
    skips, ch = [c0], c0
    for lvl, cl in enumerate(c.channels):
        for i in range(c.layers):
            attn = c.has_attn(lvl)
            out.append(UNetBlock(f"down{lvl}.res{i}", "resnet", lvl, ch, cl, push=not attn))
            ch = cl
            if attn:
                out.append(UNetBlock(f"down{lvl}.attn{i}", "transformer", lvl, ch, ch, push=True))
            skips.append(ch)
        if lvl < levels - 1:
            out.append(UNetBlock(f"down{lvl}.downsample", "downsample", lvl + 1, ch, ch, push=True))
            skips.append(ch)
    last = levels - 1
    out += [UNetBlock("mid.res0", "resnet", last, ch, ch), UNetBlock("mid.attn", "transformer", last, ch, ch),
            UNetBlock("mid.res1", "resnet", last, ch, ch)]
    for lvl in reversed(range(levels)):
        cl = c.channels[lvl]
        for i in range(c.layers + 1):
            out.append(UNetBlock(f"up{lvl}.res{i}", "resnet", lvl, ch + skips.pop(), cl, pop=True))
            ch = cl
            if c.has_attn(lvl):
                out.append(UNetBlock(f"up{lvl}.attn{i}", "transformer", lvl, ch, ch))
        if lvl > 0:
            out.append(UNetBlock(f"up{lvl}.upsample", "upsample", lvl - 1, ch, ch))
    out.append(UNetBlock("head", "head", 0, ch, channels))
    return out


def _unet(f: ModelFacts, g: Grid, c: UNetConfig):
    temb, c0 = 4 * c.channels[0], c.channels[0]
    size = lambda lvl: (g.lh >> lvl) * (g.lw >> lvl)
    blocks, alive = [], []      # alive: elements of each skip tensor still on the stack
    for b in unet_layout(c, f.latent_channels):
        n = size(b.level)
        if b.kind == "embed":
            ops = timestep_mlp("time_embedding", c0, temb) + [conv("conv_in", n, b.cin, c0, 9)]
        elif b.kind == "resnet":
            ops = _resnet(b.name, n, b.cin, b.cout, temb)
        elif b.kind == "transformer":
            ops = _transformer(b.name, n, b.cout, c.heads, g.text, c.text_dim)
        elif b.kind == "downsample":
            ops = [conv(f"{b.name}.conv", n, b.cin, b.cout, 9, in_tokens=size(b.level - 1))]
        elif b.kind == "upsample":
            ops = [ew(f"{b.name}.interp", n, b.cin, 2), conv(f"{b.name}.conv", n, b.cin, b.cout, 9)]
        else:
            ops = [norm("norm_out", n, b.cin, params=2 * b.cin), ew("act_out", n, b.cin),
                   conv("conv_out", n, b.cin, b.cout, 9)]
        if b.pop:
            alive.pop()
        if b.push:
            alive.append(n * b.cout)
        blocks.append(block(b.name, b.kind, ops, n, b.cout, sum(alive)))
    return spec(f, g, blocks, [], NO_VAE)


# ---------------------------------------------------------------- video DiT (Latte-like)
def _video(f: ModelFacts, g: Grid, c: VideoDiTConfig):
    """Spatial blocks attend within each frame (and cross-attend the text); temporal blocks
    attend across frames at each position. A fixed frame position embedding joins the
    spatial one in the embed block."""
    n, s, fr, d = g.tokens, g.per_frame, g.lf, c.hidden
    embed = _adaln_single_embed(g, c, f.latent_channels) + [ew("temp_embed", n, d, 3)]
    blocks = [block("embed", "embed", embed, n, d)]
    for i in range(c.depth):
        blocks += [block(f"spatial{i}", "transformer",
                         _adaln_block(f"spatial{i}", s, fr, d, c.heads, c.mlp_ratio * d, g.text), n, d),
                   block(f"temporal{i}", "temporal",
                         _adaln_block(f"temporal{i}", fr, s, d, c.heads, c.mlp_ratio * d, 0), n, d)]
    out = g.patch * g.patch * f.latent_channels
    blocks.append(block("final", "head", _final(g, d, f.latent_channels, 2 * d), n, out))
    return spec(f, g, blocks, [], NO_VAE)


def build(f: ModelFacts, g: Grid):
    p = PRESETS[f.id]
    return {"dit": _dit, "mmdit": _mmdit, "unet": _unet, "video-dit": _video}[p.arch](f, g, p.config)
