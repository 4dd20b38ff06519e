"""What a published run's blank `scope` and `compile` mean, per source (validate).

A latency is "denoise" (the denoising loop) or "pipeline" (prompt encoding + loop + VAE
decode), eager or compiled (torch.compile / CUDA graphs). Where a row leaves either
blank, the source's own harness decides, so the convention is a rule per source, read
from the harness that produced the numbers, never one default for every source. The
first rule whose `match` is a substring of the row's `source` applies; a source no rule
knows falls back to FALLBACK and says so (Convention.rule).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceRule:
    match: str                 # substring of the calibration row's `source`
    scope: str | None          # denoise | pipeline | None (the rule says nothing)
    compiled: bool | None
    why: str
    # images with a side above this many pixels were timed without the VAE decode (the
    # harness switches to latent output where the decode would not fit)
    latent_above_px: int | None = None


RULES: tuple[SourceRule, ...] = (
    # xDiT's 2024-08 4096px Flux chart: one 80 GB A100 cannot decode 4096^2 with the plain VAE
    # (flux.md: "the VAE OOMs above 2048px"), so its 1-GPU bar ran without the decode:
    # examples/run.sh "For high-resolution images, we use the latent output type".
    SourceRule("xDiT docs performance/flux.md @bf5e294", "denoise", False,
               "xDiT examples/run.sh: high-resolution speed runs use --output_type latent"),
    # examples/flux_example.py @0058bb0 starts its timer right before pipe(...) and stops it
    # after; output_type defaults to "pil" (xfuser/config/args.py @045d2f9): prompt encoding
    # and VAE decode are inside. Warm-up (prepare_run) is outside.
    # Above 2048px the plain Flux VAE runs out of memory (flux.md), and examples/run.sh
    # times high-resolution images with --output_type latent.
    SourceRule("xDiT docs performance/flux.md", "pipeline", False,
               "xDiT examples/flux_example.py times the whole pipe() call, output_type pil "
               "(latent above 2048px: flux.md's VAE OOM, examples/run.sh)", latent_above_px=2048),
    # examples/latte_example.py @0058bb0 times pipe(..., output_type="pt"): decode inside
    SourceRule("xDiT docs performance/latte.md", "pipeline", False,
               "xDiT examples/latte_example.py times pipe() with output_type pt (VAE decode inside)"),
    # xDiT's sweep harness for PixArt, SD3 and HunyuanDiT (benchmark/run.sh ->
    # benchmark/single_node_latency_test.py @01282f0) passes --output_type 'latent':
    # the decode is outside (prompt encoding, a few ms, inside).
    # It runs eager unless --use_torch_compile is given (the charts label compiled bars).
    SourceRule("xDiT docs PixArt chart", "denoise", False,
               "xDiT benchmark/single_node_latency_test.py: --output_type latent, eager"),
    SourceRule("xDiT docs performance/hunyuandit.md", "denoise", False,
               "xDiT benchmark/single_node_latency_test.py: --output_type latent, eager"),
    SourceRule("xdit_assets performance/scalability/SD3", "denoise", False,
               "xDiT benchmark/single_node_latency_test.py: --output_type latent, eager"),
    SourceRule("xDiT docs performance/cogvideo.md", "denoise", False,
               "the charts give latency per step (title 'Latency/Step'): the loop only; eager example"),
    # The PipeFusion paper's figures come from the same xDiT harness (its 1xL40 PixArt
    # 1024px latency, 2.8 s, equals the xDiT chart's 2.79 s); the legacy PipeFusion repo's
    # scripts/pixart_example.py defaults to --output_type latent.
    SourceRule("PipeFusion (NeurIPS25)", "denoise", False,
               "xDiT harness (--output_type latent); same 1xL40 latency as the xDiT PixArt chart"),
    SourceRule("PipeFusion legacy repo", "denoise", False,
               "legacy PipeFusion scripts/pixart_example.py: --output_type defaults to latent"),
    # DistriFusion: the distrifuser README latency command uses --output_type latent; its own
    # rows state compile=1 (PyTorch 2.2 + CUDA Graph). compile is blank only on the
    # ParaDiGMS baseline rows, which run diffusers' ParaDiGMS pipeline: eager.
    SourceRule("DistriFusion", "denoise", False,
               "distrifuser latency command: --output_type latent; blank compile only on the ParaDiGMS "
               "baseline (diffusers' eager pipeline)"),
    # AsyncDiff's examples time the whole eager pipeline call (the data README)
    SourceRule("AsyncDiff", "pipeline", False, "AsyncDiff examples time the eager pipeline call"),
)

FALLBACK = SourceRule("", "denoise", False, "no rule for this source: assumed the denoising loop, eager")


@dataclass(frozen=True, slots=True)
class Convention:
    scope: str
    compiled: bool
    rule: str          # where each value came from: "row", or the rule's reason


def rule_for(source: str) -> SourceRule:
    for r in RULES:
        if r.match in source:
            return r
    return FALLBACK


def resolve(row: dict) -> Convention:
    """The scope and compile mode of a calibration row: its own, else its source's rule."""
    rule = rule_for(row.get("source", ""))
    scope_txt = row.get("scope", "").strip()
    comp_txt = row.get("compile", "").strip()
    scope = scope_txt or rule.scope or FALLBACK.scope
    if not scope_txt and rule.latent_above_px is not None:
        try:
            side = max(int(float(row.get("height", 0))), int(float(row.get("width", 0))))
        except ValueError:
            side = 0
        if side > rule.latent_above_px:
            scope = "denoise"
    if comp_txt:
        compiled = comp_txt == "1"
    else:
        compiled = rule.compiled if rule.compiled is not None else FALLBACK.compiled
    used = []
    if not scope_txt:
        used.append(f"scope {scope}: {rule.why if rule.scope else FALLBACK.why}")
    if not comp_txt:
        used.append(f"compile {int(compiled)}: {rule.why if rule.compiled is not None else FALLBACK.why}")
    return Convention(scope, compiled, "; ".join(used) or "row")
