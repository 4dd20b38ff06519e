"""U-Net family, built from diffusers configs: convolutional encoder/decoder with
cross-attention transformers.

UNet2DConditionModel              sd1.5, sd2.1, sdxl
UNetSpatioTemporalConditionModel  svd (temporal ResNets + temporal attention)
UNetMotionModel                   animatediff: a UNet2DConditionModel config + a MotionAdapter config

Blocks are what a pipeline can cut between: the embedding + conv_in, each ResNet, each
transformer layer of an attention block (the first one also opens it with GroupNorm +
proj_in, the last closes it with proj_out + residual), each motion module, each down-
and upsampler, and the output head. skip_elems counts the long-skip tensors pushed on
the way down and not yet consumed on the way up, plus, inside a multi-layer attention
block, its input kept for the closing residual add. Video U-Nets run every 2D layer on
frames x rows x cols positions. Op names are relative to their block; layers of equal
shape share one (immutable) op tuple, built once through the lru_caches below.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from planner.zoo.hub import Cfg, ZooError, as_list, require
from planner.zoo.layers import Grid, block, conv, cross_attn, ew, linear, mlp, norm, self_attn, timestep_mlp

# __init__ defaults of the keys the builders read (diffusers 0.42.1
# src/diffusers/models/unets/unet_2d_condition.py, unet_spatio_temporal_condition.py,
# unet_motion_model.py MotionAdapter); tests/test_zoo_meta.py checks them against the classes.
UNET2D_DEFAULTS = {
    "in_channels": 4, "out_channels": 4, "block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "mid_block_type": "UNetMidBlock2DCrossAttn", "transformer_layers_per_block": 1,
    "reverse_transformer_layers_per_block": None, "attention_head_dim": 8, "num_attention_heads": None,
    "cross_attention_dim": 1280, "addition_embed_type": None, "projection_class_embeddings_input_dim": None,
    "class_embed_type": None, "encoder_hid_dim": None, "time_embedding_dim": None, "conv_in_kernel": 3,
    "conv_out_kernel": 3, "only_cross_attention": False, "dual_cross_attention": False,
    "time_embedding_type": "positional", "time_cond_proj_dim": None,
}
SVD_DEFAULTS = {
    "in_channels": 8, "out_channels": 4, "block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                         "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    "up_block_types": ("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                       "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    "transformer_layers_per_block": 1, "num_attention_heads": (5, 10, 20, 20), "cross_attention_dim": 1024,
    "projection_class_embeddings_input_dim": 768,
}
MOTION_DEFAULTS = {
    "block_out_channels": (320, 640, 1280, 1280), "motion_layers_per_block": 2,
    "motion_transformer_layers_per_block": 1, "motion_mid_block_layers_per_block": 1,
    "motion_transformer_layers_per_mid_block": 1, "motion_num_attention_heads": 8, "use_motion_mid_block": True,
    "conv_in_channels": None,
}


def latent(cfg: Cfg) -> tuple[int, int]:
    """(latent channels, patch) the U-Net denoises: its output channels, no patchify."""
    return cfg["out_channels"], 1


@lru_cache(maxsize=256)
def _resnet(rows: int, cin: int, cout: int, trows: int, temb: int, taps: int = 9, p: str = "") -> tuple:
    """ResnetBlock2D: GroupNorm -> SiLU -> conv (col) -> + time-embedding projection ->
    GroupNorm -> SiLU -> conv (row) -> + (1x1 shortcut) input. `trows`: rows of the
    time embedding (one per frame in video U-Nets); `temb`: its width. taps=3: SVD's
    (3,1,1) temporal one."""
    ops = [norm(f"{p}norm1", rows, cin, params=2 * cin), ew(f"{p}act1", rows, cin),
           conv(f"{p}conv1", rows, cin, cout, taps, "col"),
           ew(f"{p}temb_act", trows, temb), linear(f"{p}time_emb_proj", trows, temb, cout),
           ew(f"{p}temb_add", rows, cout, 3),
           norm(f"{p}norm2", rows, cout, params=2 * cout), ew(f"{p}act2", rows, cout),
           conv(f"{p}conv2", rows, cout, cout, taps, "row")]
    if cin != cout:
        ops.append(linear(f"{p}conv_shortcut", rows, cin, cout))
    return tuple(ops) + (ew(f"{p}add", rows, cout, 3),)


@lru_cache(maxsize=256)
def _basic_layer(seq: int, groups: int, c: int, heads: int, ctx: int, ctx_dim: int, ctx_rows: int,
                 p: str = "", ctx_text: bool = True) -> tuple:
    """BasicTransformerBlock: LN -> self-attn -> add, LN -> cross-attn -> add, LN -> GEGLU
    MLP (c -> 2 x 4c, 4c -> c: FeedForward's default mult 4) -> add. Q/K/V without bias,
    outputs with bias. ctx=0: AnimateDiff's double self-attention instead of cross-attention."""
    rows, hd = seq * groups, c // heads
    second = (cross_attn(f"{p}attn2", seq, c, heads, hd, ctx, ctx_dim, groups=groups, ctx_rows=ctx_rows,
                         bias=False, ctx_text=ctx_text) if ctx else
              self_attn(f"{p}attn2", seq, c, heads, hd, groups=groups, bias=False))
    second[-1] = linear(f"{p}attn2.to_out", rows, c, c, "row")
    return (norm(f"{p}norm1", rows, c, params=2 * c),
            *self_attn(f"{p}attn1", seq, c, heads, hd, groups=groups, bias=False),
            ew(f"{p}add1", rows, c, 3), norm(f"{p}norm2", rows, c, params=2 * c), *second,
            ew(f"{p}add2", rows, c, 3), norm(f"{p}norm3", rows, c, params=2 * c),
            *mlp(f"{p}ff", rows, c, 4 * c, gated=True), ew(f"{p}add3", rows, c, 3))


@lru_cache(maxsize=64)
def _svd_temporal(frames: int, hw: int, c: int, heads: int, ctx_dim: int) -> tuple:
    """TemporalBasicTransformerBlock of SVD: LN -> GEGLU ff_in -> add, temporal self-attn,
    cross-attn to the image embedding broadcast to every position (K/V on hw rows, which
    follow the image positions, so not text), GEGLU MLP; preceded by the frame-index
    embedding and followed by the learned mix."""
    rows, p = frames * hw, "temporal."
    return (*timestep_mlp(f"{p}time_pos_embed", c, 4 * c, c, rows=frames), ew(f"{p}pos_add", rows, c, 3),
            norm(f"{p}norm_in", rows, c, params=2 * c), *mlp(f"{p}ff_in", rows, c, 4 * c, gated=True),
            ew(f"{p}add_in", rows, c, 3), *_basic_layer(frames, hw, c, heads, 1, ctx_dim, hw, p, False),
            ew(f"{p}time_mixer", rows, c, 3, params=1))


@lru_cache(maxsize=64)
def _motion(frames: int, hw: int, c: int, heads: int, layers: int) -> tuple:
    """AnimateDiffTransformer3D: GroupNorm -> proj_in -> `layers` BasicTransformerBlocks with
    two temporal self-attentions and sinusoidal frame positions -> proj_out."""
    rows = frames * hw
    body = ()
    for k in range(layers):
        body += _basic_layer(frames, hw, c, heads, 0, 0, 0, f"layer{k}." if layers > 1 else "")
    return (norm("norm", rows, c, params=2 * c), linear("proj_in", rows, c, c), ew("pos_embed", rows, c, 3),
            *body, linear("proj_out", rows, c, c), ew("residual", rows, c, 3))


@dataclass(frozen=True)
class _Arch:
    """The U-Net as its config describes it (one value per resolution level, finest first)."""

    channels: tuple        # block_out_channels
    attn: tuple            # cross-attention transformer blocks per level
    layers: tuple          # transformer layers per attention block, per level (the mid block: the last)
    up_layers: tuple       # the same for the up blocks, in up order
    heads: tuple           # attention heads per level (head_dim = channels / heads)
    resnets: int           # layers_per_block (down; the up blocks have one more)
    cross: int             # cross-attention width
    add_in: int            # add_embedding input width (SDXL text_time, SVD added time ids), 0 = none
    cin: int               # conv_in channels
    cout: int              # conv_out channels
    conv_in_taps: int
    conv_out_taps: int
    temb: int              # time-embedding width
    kind: str              # "2d" | "svd" | "motion"
    motion_heads: int = 0
    motion_layers: int = 0  # transformer layers per motion module
    motion_mid: bool = False


def _levels(cfg: Cfg, down_attn: str, down_plain: str, up_attn: str, up_plain: str) -> tuple:
    down, up = list(cfg["down_block_types"]), list(cfg["up_block_types"])
    for types, accepted in ((down, (down_attn, down_plain)), (up, (up_attn, up_plain))):
        for t in types:
            if t not in accepted:
                raise ZooError(f"{cfg.where}: block type {t!r} is not one the zoo builds (accepted: "
                               f"{', '.join(accepted)})")
    attn = tuple(t == down_attn for t in down)
    if tuple(t == up_attn for t in reversed(up)) != attn or len(up) != len(down):
        raise ZooError(f"{cfg.where}: up_block_types must mirror down_block_types (got {down} / {up})")
    return attn


def _unet2d_arch(cfg: Cfg) -> _Arch:
    for key, accepted in (("addition_embed_type", (None, "text_time")), ("class_embed_type", (None,)),
                          ("encoder_hid_dim", (None,)), ("mid_block_type", ("UNetMidBlock2DCrossAttn",)),
                          ("only_cross_attention", (False,)), ("dual_cross_attention", (False,)),
                          ("time_embedding_type", ("positional",)), ("time_cond_proj_dim", (None,))):
        require(cfg, key, accepted)
    ch = tuple(cfg["block_out_channels"])
    attn = _levels(cfg, "CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
    layers = tuple(as_list(cfg["transformer_layers_per_block"], len(ch)))
    rev = cfg["reverse_transformer_layers_per_block"]
    # the diffusers naming quirk: attention_head_dim holds the number of heads when
    # num_attention_heads is unset (every SD-family config)
    heads = tuple(as_list(cfg["num_attention_heads"] or cfg["attention_head_dim"], len(ch)))
    add_in = cfg["projection_class_embeddings_input_dim"] if cfg["addition_embed_type"] == "text_time" else 0
    return _Arch(ch, attn, layers, tuple(rev) if rev else layers[::-1], heads, cfg["layers_per_block"],
                 cfg["cross_attention_dim"], add_in or 0, cfg["in_channels"], cfg["out_channels"],
                 cfg["conv_in_kernel"] ** 2, cfg["conv_out_kernel"] ** 2,
                 cfg["time_embedding_dim"] or 4 * ch[0], "2d")


def _svd_arch(cfg: Cfg) -> _Arch:
    ch = tuple(cfg["block_out_channels"])
    attn = _levels(cfg, "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal",
                   "CrossAttnUpBlockSpatioTemporal", "UpBlockSpatioTemporal")
    layers = tuple(as_list(cfg["transformer_layers_per_block"], len(ch)))
    return _Arch(ch, attn, layers, layers[::-1], tuple(as_list(cfg["num_attention_heads"], len(ch))),
                 cfg["layers_per_block"], cfg["cross_attention_dim"], cfg["projection_class_embeddings_input_dim"],
                 cfg["in_channels"], cfg["out_channels"], 9, 9, 4 * ch[0], "svd")


class _UNet:
    """Walks the U-Net in execution order, collecting blocks and the long skips: a skip
    is produced by the block that emits it and alive until the block that concatenates
    it, and every block in between (the producer included) carries it."""

    def __init__(self, a: _Arch, g: Grid):
        self.a, self.g, self.f = a, g, g.lf
        video = a.kind != "2d"
        self.trows = self.f if video else 1
        # prompt K/V rows: SVD repeats its 1-token image embedding per frame, AnimateDiff
        # its prompt per frame; image U-Nets project the prompt once
        self.ctx_rows = self.f * g.text if video else g.text
        self.pending = []    # (name, kind, ops, rows, channels, extra carried elements)
        self.spans = []      # [producer block, consumer block, elements] of each skip
        self.stack = []      # spans of the skips not consumed yet

    def emit(self, name: str, kind: str, ops, rows: int, c: int, extra: int = 0) -> None:
        self.pending.append((name, kind, ops, rows, c, extra))

    def push(self, elems: int) -> None:
        """The last emitted block's output is also kept as a skip."""
        self.stack.append(len(self.spans))
        self.spans.append([len(self.pending) - 1, None, elems])

    def pop(self) -> int:
        """The next block to be emitted consumes the newest skip; returns its elements."""
        span = self.spans[self.stack.pop()]
        span[1] = len(self.pending)
        return span[2]

    def finish(self) -> list:
        assert not self.stack
        return [block(name, kind, ops, rows, c,
                      extra + sum(e for p, q, e in self.spans if p <= i < q))
                for i, (name, kind, ops, rows, c, extra) in enumerate(self.pending)]

    def resnet(self, p: str, rows: int, cin: int, cout: int) -> None:
        ops = _resnet(rows, cin, cout, self.trows, self.a.temb)
        if self.a.kind == "svd":   # SpatioTemporalResBlock: + (3,1,1) temporal ResNet + mix
            ops += _resnet(rows, cout, cout, self.trows, self.a.temb, 3, "temporal.")
            ops += (ew("time_mixer", rows, cout, 3, params=1),)
        self.emit(p, "resnet", ops, rows, cout)

    def attention(self, p: str, level: int, hw: int, c: int, layers: int, motion: bool) -> None:
        rows, heads = self.f * hw, self.a.heads[level]
        layer = _basic_layer(hw, self.f, c, heads, self.g.text, self.a.cross, self.ctx_rows)
        if self.a.kind == "svd":
            layer += _svd_temporal(self.f, hw, c, heads, self.a.cross)
        opening = (norm("norm", rows, c, params=2 * c), linear("proj_in", rows, c, c))
        closing = (linear("proj_out", rows, c, c), ew("residual", rows, c, 3))
        for k in range(layers):
            last = k == layers - 1
            ops = opening * (k == 0) + layer + closing * last
            self.emit(f"{p}.layer{k}" if layers > 1 else p, "attn", ops, rows, c, 0 if last else rows * c)
        if motion:
            self.motion(f"{p}.motion", hw, c)

    def motion(self, p: str, hw: int, c: int) -> None:
        self.emit(p, "temporal", _motion(self.f, hw, c, self.a.motion_heads, self.a.motion_layers),
                  self.f * hw, c)

    def build(self):
        a, g, f, ch = self.a, self.g, self.f, self.a.channels
        animated = a.kind == "motion"
        sizes = [(g.lh, g.lw)]
        for _ in ch[1:]:   # stride-2 convs with padding 1 round up
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2))
        hw = [h * w for h, w in sizes]
        rows0 = f * hw[0]
        embed = timestep_mlp("time_embedding", ch[0], a.temb)
        if a.add_in:
            embed += timestep_mlp("add_embedding", a.add_in, a.temb)
        embed.append(conv("conv_in", rows0, a.cin, ch[0], a.conv_in_taps))
        self.emit("embed", "embed", embed, rows0, ch[0])
        self.push(rows0 * ch[0])
        c = ch[0]
        for i, cout in enumerate(ch):
            rows = f * hw[i]
            for j in range(a.resnets):
                self.resnet(f"down{i}.res{j}", rows, c, cout)
                c = cout
                if a.attn[i]:
                    self.attention(f"down{i}.attn{j}", i, hw[i], c, a.layers[i], animated)
                elif animated:
                    self.motion(f"down{i}.motion{j}", hw[i], c)
                self.push(rows * c)
            if i < len(ch) - 1:
                self.emit(f"down{i}.downsample", "down",
                          [conv("conv", f * hw[i + 1], c, c, 9, in_tokens=rows)], f * hw[i + 1], c)
                self.push(f * hw[i + 1] * c)
        top, rows = len(ch) - 1, f * hw[-1]
        self.resnet("mid.res0", rows, c, c)
        self.attention("mid.attn", top, hw[-1], c, a.layers[-1], animated and a.motion_mid)
        self.resnet("mid.res1", rows, c, c)
        for i in reversed(range(len(ch))):
            rows, cout = f * hw[i], ch[i]
            for j in range(a.resnets + 1):
                self.resnet(f"up{top - i}.res{j}", rows, c + self.pop() // rows, cout)
                c = cout
                if a.attn[i]:
                    self.attention(f"up{top - i}.attn{j}", i, hw[i], c, a.up_layers[top - i], animated)
                elif animated:
                    self.motion(f"up{top - i}.motion{j}", hw[i], c)
            if i > 0:
                up_rows = f * hw[i - 1]
                self.emit(f"up{top - i}.upsample", "up",
                          [conv("conv", up_rows, c, c, 9, in_tokens=rows)], up_rows, c)
        head = [norm("conv_norm_out", rows0, c, params=2 * c), ew("conv_act", rows0, c),
                conv("conv_out", rows0, c, a.cout, a.conv_out_taps)]
        self.emit("final", "head", head, rows0, a.cout)
        return self.finish()


def unet2d(cfg: Cfg, g: Grid) -> list:
    """UNet2DConditionModel (SD1.x, SD2.x, SDXL)."""
    return _UNet(_unet2d_arch(cfg), g).build()


def spatio_temporal(cfg: Cfg, g: Grid) -> list:
    """UNetSpatioTemporalConditionModel (SVD)."""
    return _UNet(_svd_arch(cfg), g).build()


def motion(cfg: Cfg, adapter: Cfg, g: Grid) -> list:
    """UNetMotionModel: a UNet2DConditionModel config plus a MotionAdapter config, as
    UNetMotionModel.from_unet2d combines them (AnimateDiff)."""
    a = _unet2d_arch(cfg)
    if tuple(adapter["block_out_channels"]) != a.channels:
        raise ZooError(f"{adapter.where}: block_out_channels {list(adapter['block_out_channels'])} must equal the "
                       f"U-Net's {list(a.channels)}")
    if adapter["motion_layers_per_block"] != a.resnets:
        raise ZooError(f"{adapter.where}: motion_layers_per_block {adapter['motion_layers_per_block']} must equal "
                       f"the U-Net's layers_per_block {a.resnets}")
    if adapter["conv_in_channels"]:
        raise ZooError(f"{adapter.where}: conv_in_channels (PIA-style adapters) is not supported (accepted: null)")
    for key in ("motion_mid_block_layers_per_block", "motion_transformer_layers_per_mid_block"):
        if adapter[key] != 1:
            raise ZooError(f"{adapter.where}: {key}={adapter[key]} is not supported (accepted: 1)")
    return _UNet(replace(a, kind="motion", motion_heads=adapter["motion_num_attention_heads"],
                         motion_layers=adapter["motion_transformer_layers_per_block"],
                         motion_mid=bool(adapter["use_motion_mid_block"])), g).build()
