"""Ulysses through diffusers' own context parallelism (ContextParallelConfig and the class's
_cp_plan), for the classes that have one (FluxTransformer2DModel, WanTransformer3DModel).

    applies(plan, job, cls)  -> whether this segment runs natively (Job.cp "auto")
    NativeUlysses            the loop: the class's own forward on the whole latent, split
                             and gathered by the _cp_plan hooks, attention all-to-alls by
                             diffusers' TemplatedUlyssesAttention over a DeviceMesh of the
                             plan's Ulysses groups

It gives the serial result (tests/test_executor_diffusers.py), like the executor's Ulysses.
What it differs in: the _cp_plan also splits the text tokens across the group (the
executor keeps them whole on every rank), and its collectives bypass executor/comm.py, so
the run's byte counts miss them (the notes say so).

Not native, and why:
- Ring: diffusers' ring merges partial attentions by their log-sum-exp, and its CPU
  attention backend (native) refuses return_lse; the executor's ring does it itself.
- ModelMixin.enable_parallelism: it picks its device as rank % torch.accelerator
  .device_count(), which is 0 without an accelerator, so the steps it takes are done here
  (ParallelConfig.setup with the mesh, the processors' _parallel_config, the _cp_plan hooks).
- Other layouts than xDiT's (--order), and strategies that cut the model into stages or
  patches (PipeFusion, DistriFusion, ...): those need the block list (executor/diffusers).
"""
from __future__ import annotations

import importlib
import re

import torch

from planner.engines.diffusers import KEYS as DIFFUSERS_KEYS
from planner.strategies import STRATEGIES


def cp_degrees(plan) -> dict[str, int] | None:
    """ContextParallelConfig fields of the plan's layer strategies, when every one of them
    is one (the planner's diffusers engine says which keys are, and as which field) and the
    rest only choose images or guidance branches (the executor's, around the class's forward);
    else None."""
    conf = {}
    for key, d in plan.degrees:
        s = STRATEGIES[key]
        if s.batch_split(d) > 1 or s.image_split(d) > 1:
            continue
        support = DIFFUSERS_KEYS[key]
        m = support.supported and re.match(r"ContextParallelConfig\((\w+)=N\)", support.note)
        if not m:
            return None
        conf[m.group(1)] = d
    return conf or None


def applies(plan, job, cls) -> bool:
    """Ulysses alone (diffusers' CPU attention cannot return the LSE Ring merges by), on a
    class with a _cp_plan, in xDiT's layout (the mesh below follows it)."""
    if job.cp == "executor" or job.order or not getattr(cls, "_cp_plan", None):
        return False
    conf = cp_degrees(plan)
    return bool(conf) and conf.get("ring_degree", 1) == 1 and conf.get("ulysses_degree", 1) > 1


def _mesh(setup, cp):
    """A DeviceMesh of the world whose innermost dims are diffusers' ("ring", "ulysses"):
    the plan's batch dims outside, in xDiT's order (the Ulysses dim is the layout's
    innermost), checked against the group the executor made for it."""
    from torch.distributed.device_mesh import init_device_mesh
    lay, plan = setup.layout, setup.plan
    inner, outer = lay.order[0], list(reversed(lay.order[1:]))     # DeviceMesh: outer -> inner
    shape = tuple(plan.degree(d) for d in outer) + (cp.ring_degree, cp.ulysses_degree)
    mesh = init_device_mesh(setup.rt.world.device.type, shape, mesh_dim_names=tuple(outer) + cp.mesh_dim_names)
    sub = mesh[cp.mesh_dim_names]
    got = tuple(sorted(int(r) for r in sub.mesh.flatten().tolist()))
    if got != tuple(setup.groups[inner].ranks):
        raise RuntimeError(f"diffusers' mesh group {got} is not the executor's {setup.groups[inner].ranks}")
    return sub


class NativeUlysses:
    key = "native"

    def model(self, setup):
        from diffusers import ContextParallelConfig
        from diffusers.hooks.context_parallel import apply_context_parallel
        from diffusers.models._modeling_parallel import ParallelConfig
        net = setup.rt.source.pipeline.denoiser()
        self.conf = cp_degrees(setup.plan)
        cp = ContextParallelConfig(**self.conf)
        mesh = _mesh(setup, cp)
        cp.mesh = mesh
        config = ParallelConfig(context_parallel_config=cp)
        world = setup.rt.world
        config.setup(world.rank, world.size, world.device, mesh=mesh)
        net._parallel_config = config
        for m in net.modules():              # what ModelMixin.enable_parallelism does
            proc = getattr(m, "processor", None)
            if proc is not None and hasattr(proc, "_parallel_config"):
                proc._parallel_config = config
        apply_context_parallel(net, cp, net._cp_plan)
        self.forward = importlib.import_module(f"{__package__}.{setup.rt.source.pipeline.family}").class_forward
        return net

    def run(self, setup, x, steps):
        rt = setup.rt
        lat = setup.take(x, (0, rt.units))
        for i in steps:
            s = setup.inputs(lat, i)
            args = (s.latent, s.t, s.text) + ((s.pooled,) if s.pooled is not None else ())
            with torch.no_grad():
                eps = self.forward(setup.model, *args)
            lat = rt.sched.step(lat, setup.guided(eps), i)
        fields = ", ".join(f"{k}={v}" for k, v in self.conf.items())
        rt.extra["native_cp"] = f"diffusers ContextParallelConfig({fields}) (its all-to-alls are not in the byte counts)"
        return setup.gather(lat, seq=rt.world.group((rt.world.rank,)))
