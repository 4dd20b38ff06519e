"""Ulysses through diffusers' own context parallelism (ContextParallelConfig and the class's
_cp_plan), for the classes that have one (FluxTransformer2DModel, WanTransformer3DModel).

    applies(plan, job, cls)  -> whether this segment runs natively (Job.cp "auto"/"diffusers")
    NativeUlysses            the driver: the class's own forward on the whole latent, split
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

import torch

NATIVE_KEYS = {"ulysses", "cfg", "dp"}


def applies(plan, job, cls) -> bool:
    if job.cp == "executor" or job.order or not getattr(cls, "_cp_plan", None):
        return False
    return plan.degree("ulysses") > 1 and set(plan.keys) <= NATIVE_KEYS


def _mesh(setup):
    """A DeviceMesh (dp, cfg, ring, ulysses) of the world in xDiT's order (ulysses inner):
    the sub-mesh ("ring", "ulysses") of this rank is its Ulysses group."""
    from torch.distributed.device_mesh import init_device_mesh
    plan = setup.plan
    shape = (plan.degree("dp"), plan.degree("cfg"), 1, plan.degree("ulysses"))
    mesh = init_device_mesh(setup.rt.world.device.type, shape, mesh_dim_names=("dp", "cfg", "ring", "ulysses"))
    return mesh["ring", "ulysses"]


class NativeUlysses:
    key = "ulysses"

    def model(self, setup):
        from diffusers import ContextParallelConfig
        from diffusers.hooks.context_parallel import apply_context_parallel
        from diffusers.models._modeling_parallel import ParallelConfig
        net = setup.rt.source.pipeline.denoiser()
        mesh = _mesh(setup)
        cp = ContextParallelConfig(ulysses_degree=setup.plan.degree("ulysses"), mesh=mesh)
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
        rt.extra["native_cp"] = (f"diffusers ContextParallelConfig(ulysses_degree={setup.plan.degree('ulysses')}) "
                                 f"(its all-to-alls are not in the byte counts)")
        return setup.gather(lat, seq=rt.world.group((rt.world.rank,)))
