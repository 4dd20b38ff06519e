"""xDiT (xdit-project/xDiT, PyPI `xfuser`): which plans it runs and its torchrun line.

Read at: README.md@005ce80b ("Supported DiTs": CFG / SP / PipeFusion / TP per model),
docs/runner/runner.md@005e6e6e (the parallel flags), examples/*.py (one script per
model), and ../shared/research/xdit.md (a) for the checks in config/config.py and
parallel_state.py (degree product = world size, heads % ulysses, latent rows % sp, the
fixed rank order tp-sp-pp-cfg-dp). Stage cuts by cost cannot be expressed except
through --attn_layer_num_for_pp, emitted when the cuts are known.
"""
from __future__ import annotations

from ..layout import XDIT_ORDER
from ..plan import Plan
from ..strategies import STRATEGIES
from .base import Engine, Launch, ModelSupport, decisions, has, lacks
from .models import repo

README = "xdit-project/xDiT@005ce80b README.md (Supported DiTs)"
RUNNER = "xdit-project/xDiT@005e6e6e docs/runner/runner.md (Parallelization)"
NOTES = "shared/research/xdit.md (a) (xDiT 0.4 config/config.py, parallel_state.py)"

_STEP = "its parallel flags are dp, cfg, ulysses, ring, pipefusion and tp; no step- or component-parallel method"
KEYS = decisions({
    "serial": has("", RUNNER),
    "dp": has("--data_parallel_degree", RUNNER),
    "cfg": has("--use_cfg_parallel", RUNNER),
    "ulysses": has("--ulysses_degree", RUNNER),
    "ring": has("--ring_degree", RUNNER),
    "pipefusion": has("--pipefusion_parallel_degree --num_pipeline_patch --warmup_steps", RUNNER),
    "tp": lacks("--tensor_parallel_degree wraps the FeedForward only (custom TP for StepVideo); the table marks "
                "TP for no zoo model, and the planner's tp also splits the attention heads", README),
    "distrifusion": lacks("DistriFusion is 'implemented for reference' in the legacy branch (DistriConfig), "
                          "not in the main runner or examples", README),
    "sync_patch": lacks("no synchronous patch parallelism: its parallel flags are dp, cfg, ulysses, ring, "
                        "pipefusion and tp", RUNNER),
    "naive_patch": lacks("its parallel flags are dp, cfg, ulysses, ring, pipefusion and tp (naive patches exist "
                         "only as the legacy DistriConfig parallelism='naive_patch')", RUNNER),
    "dsp": lacks("no dynamic sequence parallelism; SP splits one token sequence", RUNNER),
}, lacks(_STEP, RUNNER))

_CFG_SP_PP = frozenset({"dp", "cfg", "ulysses", "ring", "pipefusion"})
_SP_PP = frozenset({"dp", "ulysses", "ring", "pipefusion"})
_CFG_SP = frozenset({"dp", "cfg", "ulysses", "ring"})
_SP = frozenset({"dp", "ulysses", "ring"})
# zoo id -> (example script, keys): the README table's row for the model's class
_ROWS = {
    "pixart-alpha": ("pixartalpha_example.py", _CFG_SP_PP),
    "pixart-sigma": ("pixartsigma_example.py", _CFG_SP_PP),
    "sd3-medium": ("sd3_example.py", _CFG_SP_PP),
    "sd3.5-large": ("sd3_example.py", _CFG_SP_PP),
    "hunyuandit": ("hunyuandit_example.py", _CFG_SP_PP),
    "flux.1-dev": ("flux_example.py", _SP_PP),            # CFG: NA (guidance-distilled)
    "flux.1-schnell": ("flux_example.py", _SP_PP),
    "cogvideox-2b": ("cogvideox_example.py", _CFG_SP),
    "cogvideox-5b": ("cogvideox_example.py", _CFG_SP),
    "latte-1": ("latte_example.py", _SP),
    "wan2.1-t2v-1.3b": ("wan_example.py", _SP),
    "wan2.1-t2v-14b": ("wan_example.py", _SP),
    "hunyuanvideo": ("hunyuan_video_usp_example.py", _SP),
    "sdxl": ("sdxl_example.py", frozenset({"cfg"})),      # "UNet (SDXL) supports only cfg=2 on 2 GPUs"
}
MODELS = {m: ModelSupport(script, keys, README) for m, (script, keys) in _ROWS.items()}


def xdit_flags(plan: Plan, warmup_default: int = 1, stage_blocks: list[int] | None = None) -> list[str]:
    """xDiT's parallel flags for a plan (its degrees; keys xDiT lacks are left out)."""
    flags = [f"--data_parallel_degree {plan.degree('dp')}",
             f"--ulysses_degree {plan.degree('ulysses')}",
             f"--ring_degree {plan.degree('ring')}",
             f"--pipefusion_parallel_degree {plan.degree('pipefusion')}",
             f"--tensor_parallel_degree {plan.degree('tp')}"]
    if plan.degree("pipefusion") > 1:
        flags.append(f"--num_pipeline_patch {plan.get('patches', plan.degree('pipefusion'))}")
        flags.append(f"--warmup_steps {plan.get('warmup', warmup_default)}")
        if stage_blocks:
            flags.append(f"--attn_layer_num_for_pp {' '.join(str(b) for b in stage_blocks)}")
    if plan.degree("cfg") == 2:
        flags.append("--use_cfg_parallel")
    return flags


class XDiT(Engine):
    def launch(self, plan, model, sc, cluster) -> Launch:
        from .base import torchrun
        ms = self.model_support(model.id)
        script = f"examples/{ms.name}" if ms else "examples/<model>_example.py"
        flags = xdit_flags(plan, STRATEGIES["pipefusion"].default_warmup)
        size = [f"--height {sc.height}", f"--width {sc.width}", f"--num_inference_steps {sc.steps}"]
        if sc.frames > 1:
            size.append(f"--num_frames {sc.frames}")
        cmd = torchrun(cluster, f"{script} --model {repo(model.id)} {' '.join(flags + size)} --prompt \"...\"")
        config = {k.lstrip("-"): (v[0] if v else True) for k, *v in (f.split(" ", 1) for f in flags)}
        notes = ["run from an xDiT checkout (the example scripts are not installed by pip)"]
        if plan.degree("ring") > 1:
            notes.append("ring > 1 needs an attention backend that returns the LSE (flash-attn)"
                         + ("; with PipeFusion, xDiT's ring_impl_type 'basic'" if plan.degree("pipefusion") > 1 else ""))
        return Launch(cmd, config, notes=tuple(notes))


XDIT = XDiT(name="xdit", title="xDiT", version="main, README@005ce80b", keys=KEYS, models=MODELS,
            order=XDIT_ORDER, order_source=NOTES,
            schedules=lacks("xDiT cannot switch strategies during sampling (schedule segments)", RUNNER))


def xdit_section(plan: Plan, model, sc, cluster, placed: tuple[str, ...] | None) -> tuple[dict, list[str]]:
    """`plan --xdit`: xDiT's flags for the plan, why xDiT cannot run it as is, and the
    GPU order that gives xDiT a placed layout (placed: the placement's order when it beats
    xDiT's, planner.search.SearchResult.placed_order); as JSON "xdit" and as text lines."""
    from .devices import device_lines, placed_devices
    flags = xdit_flags(plan)
    problems = [str(r) for r in XDIT.refusals(plan, model, sc, cluster.nodes)]
    doc = {"flags": flags, "problems": problems} | placed_devices(plan, placed, cluster)
    lines = (["\nxDiT flags: " + " ".join(flags)] + [f"  xDiT cannot run this plan as is: {p}" for p in problems]
             + [f"  {line}" for line in device_lines("xDiT", doc)])
    return doc, lines
