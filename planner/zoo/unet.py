"""U-Net family: convolutional encoder/decoder with cross-attention transformers.

sd1.5 / sd2.1 / sdxl   UNet2DConditionModel
svd                    UNetSpatioTemporalConditionModel (temporal ResNets + temporal attention)
animatediff            UNetMotionModel = the SD1.5 U-Net + MotionAdapter motion modules

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

from functools import lru_cache

from planner.zoo import encoders, vae
from planner.zoo.layers import (Grid, block, conv, cross_attn, ew, linear, mlp, norm, self_attn, spec,
                                timestep_mlp)

TEMB = 1280   # time-embedding width of every SD-family U-Net

# channels per level, cross-attention per level, transformer layers per level (the mid
# block uses the last), attention heads per level (head_dim = channels / heads),
# cross-attention width, add_embedding input (SDXL: pooled bigG + 6 size ids x 256;
# SVD: 3 added time ids x 256), conv_in channels.
_CFG = {
    "sd1.5": ((320, 640, 1280, 1280), (1, 1, 1, 0), (1, 1, 1, 1), (8, 8, 8, 8), 768, 0, 4),
    "sd2.1": ((320, 640, 1280, 1280), (1, 1, 1, 0), (1, 1, 1, 1), (5, 10, 20, 20), 1024, 0, 4),
    "sdxl": ((320, 640, 1280), (0, 1, 1), (1, 2, 10), (5, 10, 20), 2048, 2816, 4),
    "svd": ((320, 640, 1280, 1280), (1, 1, 1, 0), (1, 1, 1, 1), (5, 10, 20, 20), 1024, 768, 8),
    "animatediff": ((320, 640, 1280, 1280), (1, 1, 1, 0), (1, 1, 1, 1), (8, 8, 8, 8), 768, 0, 4),
}


@lru_cache(maxsize=256)
def _resnet(rows: int, cin: int, cout: int, trows: int, taps: int = 9, p: str = "") -> tuple:
    """ResnetBlock2D: GroupNorm -> SiLU -> conv (col) -> + time-embedding projection ->
    GroupNorm -> SiLU -> conv (row) -> + (1x1 shortcut) input. `trows`: rows of the
    time embedding (one per frame in video U-Nets). taps=3: SVD's (3,1,1) temporal one."""
    ops = [norm(f"{p}norm1", rows, cin, params=2 * cin), ew(f"{p}act1", rows, cin),
           conv(f"{p}conv1", rows, cin, cout, taps, "col"),
           ew(f"{p}temb_act", trows, TEMB), linear(f"{p}time_emb_proj", trows, TEMB, cout),
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
    MLP (c -> 2 x 4c, 4c -> c) -> add. Q/K/V without bias, outputs with bias. ctx=0:
    AnimateDiff's double self-attention instead of cross-attention."""
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
def _svd_temporal(frames: int, hw: int, c: int, heads: int) -> tuple:
    """TemporalBasicTransformerBlock of SVD: LN -> GEGLU ff_in -> add, temporal self-attn,
    cross-attn to the image embedding broadcast to every position (K/V on hw rows, which
    follow the image positions, so not text), GEGLU MLP; preceded by the frame-index
    embedding and followed by the learned mix."""
    rows, p = frames * hw, "temporal."
    return (*timestep_mlp(f"{p}time_pos_embed", c, 4 * c, c, rows=frames), ew(f"{p}pos_add", rows, c, 3),
            norm(f"{p}norm_in", rows, c, params=2 * c), *mlp(f"{p}ff_in", rows, c, 4 * c, gated=True),
            ew(f"{p}add_in", rows, c, 3), *_basic_layer(frames, hw, c, heads, 1, 1024, hw, p, False),
            ew(f"{p}time_mixer", rows, c, 3, params=1))


@lru_cache(maxsize=64)
def _motion(frames: int, hw: int, c: int) -> tuple:
    """AnimateDiffTransformer3D: GroupNorm -> proj_in -> one BasicTransformerBlock with
    two temporal self-attentions (8 heads) and sinusoidal frame positions -> proj_out."""
    rows = frames * hw
    return (norm("norm", rows, c, params=2 * c), linear("proj_in", rows, c, c), ew("pos_embed", rows, c, 3),
            *_basic_layer(frames, hw, c, 8, 0, 0, 0), linear("proj_out", rows, c, c),
            ew("residual", rows, c, 3))


class _UNet:
    """Walks the U-Net in execution order, collecting blocks and the long skips: a skip
    is produced by the block that emits it and alive until the block that concatenates
    it, and every block in between (the producer included) carries it."""

    def __init__(self, f, g: Grid):
        (self.ch, self.attn, self.layers, self.heads, self.cross, self.add_in, self.cin) = _CFG[f.id]
        self.id, self.g, self.f = f.id, g, g.lf
        self.video = f.arch == "video-unet"
        self.trows = self.f if self.video else 1
        # prompt K/V rows: SVD repeats its 1-token image embedding per frame, AnimateDiff
        # its prompt per frame; image U-Nets project the prompt once
        self.ctx_rows = self.f * g.text if self.video else g.text
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
        ops = _resnet(rows, cin, cout, self.trows)
        if self.id == "svd":   # SpatioTemporalResBlock: + (3,1,1) temporal ResNet + mix
            ops += _resnet(rows, cout, cout, self.trows, 3, "temporal.")
            ops += (ew("time_mixer", rows, cout, 3, params=1),)
        self.emit(p, "resnet", ops, rows, cout)

    def attention(self, p: str, level: int, hw: int, c: int, layers: int) -> None:
        rows, heads = self.f * hw, self.heads[level]
        layer = _basic_layer(hw, self.f, c, heads, self.g.text, self.cross, self.ctx_rows)
        if self.id == "svd":
            layer += _svd_temporal(self.f, hw, c, heads)
        opening = (norm("norm", rows, c, params=2 * c), linear("proj_in", rows, c, c))
        closing = (linear("proj_out", rows, c, c), ew("residual", rows, c, 3))
        for k in range(layers):
            last = k == layers - 1
            ops = opening * (k == 0) + layer + closing * last
            self.emit(f"{p}.layer{k}" if layers > 1 else p, "attn", ops, rows, c, 0 if last else rows * c)
        if self.id == "animatediff":
            self.motion(f"{p}.motion", hw, c)

    def motion(self, p: str, hw: int, c: int) -> None:
        self.emit(p, "temporal", _motion(self.f, hw, c), self.f * hw, c)

    def build(self):
        g, f, ch = self.g, self.f, self.ch
        sizes = [(g.lh, g.lw)]
        for _ in ch[1:]:   # stride-2 convs with padding 1 round up
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2))
        hw = [h * w for h, w in sizes]
        rows0 = f * hw[0]
        embed = timestep_mlp("time_embedding", ch[0], TEMB)
        if self.add_in:
            embed += timestep_mlp("add_embedding", self.add_in, TEMB)
        embed.append(conv("conv_in", rows0, self.cin, ch[0], 9))
        self.emit("embed", "embed", embed, rows0, ch[0])
        self.push(rows0 * ch[0])
        c = ch[0]
        for i, cout in enumerate(ch):
            rows = f * hw[i]
            for j in range(2):
                self.resnet(f"down{i}.res{j}", rows, c, cout)
                c = cout
                if self.attn[i]:
                    self.attention(f"down{i}.attn{j}", i, hw[i], c, self.layers[i])
                elif self.id == "animatediff":
                    self.motion(f"down{i}.motion{j}", hw[i], c)
                self.push(rows * c)
            if i < len(ch) - 1:
                self.emit(f"down{i}.downsample", "down",
                          [conv("conv", f * hw[i + 1], c, c, 9, in_tokens=rows)], f * hw[i + 1], c)
                self.push(f * hw[i + 1] * c)
        top, rows = len(ch) - 1, f * hw[-1]
        self.resnet("mid.res0", rows, c, c)
        self.attention("mid.attn", top, hw[-1], c, self.layers[-1])
        self.resnet("mid.res1", rows, c, c)
        for i in reversed(range(len(ch))):
            rows, cout = f * hw[i], ch[i]
            for j in range(3):
                self.resnet(f"up{top - i}.res{j}", rows, c + self.pop() // rows, cout)
                c = cout
                if self.attn[i]:
                    self.attention(f"up{top - i}.attn{j}", i, hw[i], c, self.layers[i])
                elif self.id == "animatediff":
                    self.motion(f"up{top - i}.motion{j}", hw[i], c)
            if i > 0:
                up_rows = f * hw[i - 1]
                self.emit(f"up{top - i}.upsample", "up",
                          [conv("conv", up_rows, c, c, 9, in_tokens=rows)], up_rows, c)
        head = [norm("conv_norm_out", rows0, c, params=2 * c), ew("conv_act", rows0, c),
                conv("conv_out", rows0, c, 4, 9)]
        self.emit("final", "head", head, rows0, 4)
        return self.finish()


def build(f, g: Grid):
    blocks = _UNet(f, g).build()
    if f.id == "svd":
        if g.text != 1:
            raise ValueError(f"svd: text_tokens={g.text} but SVD attends to one image-embedding "
                             f"token (use 1)")
        return spec(f, g, blocks, [encoders.clip_vit_h_image()], vae.svd_decoder(g.lh, g.lw, g.lf))
    if f.id == "sd2.1":
        enc = [encoders.openclip_h(g.text)]
    elif f.id == "sdxl":
        enc = [encoders.clip_l(g.text), encoders.openclip_bigg(g.text)]
    else:   # sd1.5 and AnimateDiff's SD1.5 base
        enc = [encoders.clip_l(g.text)]
    return spec(f, g, blocks, enc, vae.sd_decoder(4, g.lh, g.lw, g.frames))
