"""pipefusion: xDiT's patch-level pipeline (PipeFusion).

The blocks are cut into N stages (the cuts planner.cost.predict chose by cost, carried in
Job.stages) and, after `warmup` synchronous steps, the image into M patches (row or frame
slices). Stage s works on patch j while stage s+1 works on patch j-1:

    stage 0        for each patch: take the patch's latent (from the last stage's update),
                   run its blocks, isend the boundary State to stage 1
    middle stages  recv the State of patch j, run their blocks, isend it on
    last stage     recv, run its blocks -> noise prediction of patch j; guidance and the
                   scheduler update of the patch; isend the updated latent patch to stage 0

so patch j of step t+1 enters stage 0 as soon as patch j of step t has left the last
stage. With cfg=2 the two branches' noise predictions are all-gathered once per step
(as the planner times it), so the update waits for every patch of the step.

Attention of a stage's layers reads a full-image K/V buffer: the fresh K/V of the
current patch are written into it, the other patches' entries are from this step if
their patch went first, else from the previous step (stale). Warm-up steps push the
whole image through the stages, which fills the buffers with fresh values. Ulysses and
Ring inside a stage split each patch over the sequence group; the buffer then holds this
rank's heads (Ulysses) and every token (Ring passes collect the patch's K/V). U-Net
convs and group norms see the other patches through spatial.Rows tables the same way.
Approximate.
"""
from __future__ import annotations

import torch

from planner.strategies import STRATEGIES

from ..comm import wait_all
from ..context import Ctx, sdpa_text
from ..blocks import State
from ..spatial import Rows
from . import ring, tp, ulysses
from .runner import Runner

FWD, LAT = 11, 21     # p2p tags: boundary States forward, latent patches back to stage 0


class PipeCtx(Ctx):
    def __init__(self, *args, uly, ring_group, seq, **kw):
        super().__init__(*args, **kw)
        self.uly, self.ring, self.seq = uly, ring_group, seq
        self.span = (0, self.U)          # units of the current patch (the whole image when warm)
        self.fill_tables = False
        self.kv: dict = {}
        self.rows = Rows(self.comm, seq, exchange="sync", table=True)

    def attention(self, mod, q, k, v, text=None):
        if self.uly.size > 1:
            q, k, v = ulysses.to_heads(self.comm, self.uly, q, k, v)
            text_l = ulysses.text_heads(self.uly, text)
        else:
            text_l = text
        kv = torch.stack([k, v])
        if self.ring.size > 1:                                        # the patch's other slices
            kv = torch.cat(ring.gather(self.comm, self.ring, kv).unbind(0), dim=3)
        s0, s1 = self.span
        n = kv.shape[3]                                               # tokens of the patch
        j, count = s0 // (s1 - s0), self.U // (s1 - s0)
        shape = kv.shape[:3] + (count * n,) + kv.shape[4:]
        buf = self.kv.get(mod.lid)
        if buf is None or buf.shape != shape:
            buf = self.kv[mod.lid] = torch.zeros(shape, dtype=kv.dtype, device=kv.device)
        buf[:, :, :, j * n:(j + 1) * n] = kv
        out = sdpa_text(q, buf[0], buf[1], text_l)
        if self.uly.size == 1:
            return out
        if text is None:
            return ulysses.to_tokens(self.comm, self.uly, out)
        o, to = out
        return ulysses.to_tokens(self.comm, self.uly, o), ulysses.text_output(self.comm, self.uly, to)

    def halo(self, mod, x):
        return self.rows.halo(self, mod, x)

    def group_norm(self, mod, x):
        return self.rows.group_norm(self, mod, x)


class PipeFusion:
    key = "pipefusion"

    def model(self, setup):
        m = tp.build_sharded(setup)
        m.keep_blocks(*setup.stages[setup.group("pipefusion").index])
        return m

    def run(self, setup, x, steps):
        rt, plan, comm = setup.rt, setup.plan, setup.rt.world.comm
        pf, seq = setup.group("pipefusion"), setup.seq
        stage, nstage = pf.index, pf.size
        first, last = stage == 0, stage == nstage - 1
        a, b = setup.stages[stage]
        patches = int(plan.get("patches", nstage))
        steps = list(steps)
        warm = min(STRATEGIES["pipefusion"].warmup(plan), len(steps))
        cfg_group = setup.group("cfg")
        ctx = rt.new_ctx(PipeCtx, tp=setup.group("tp"), uly=setup.group("ulysses"),
                         ring_group=setup.group("ring"), seq=seq)
        lat = setup.take(x, (0, rt.units))        # this rank's images, every unit
        dtype, dev = rt.dtype, rt.world.device
        sends: list = []

        def parts(n: int) -> list[tuple[int, int]]:
            """The micro-batches of step n: the whole image (warm-up) or the patches."""
            if n < warm:
                return [(0, rt.units)]
            return [setup.chunk(j, patches, None) for j in range(patches)]

        def mine(span):
            return setup.chunk(seq.index, seq.size, span)

        for n, i in enumerate(steps):
            ctx.begin_step(warm=n < warm)
            ctx.fill_tables = n < warm
            spans = parts(n)
            per_patch = last and cfg_group.size == 1 and n >= warm and n + 1 < len(steps)
            eps_parts = []
            for j, span in enumerate(spans):
                units = mine(span)
                ctx.span = span
                ctx.set_units(*units)
                key = (str(setup.plan), n < warm, j)
                if first:
                    if n > 0:   # the last stage's update of this patch
                        (patch,) = comm.recv_tensors(pf.peer(-1), ("lat",) + key, torch.float32, dev, LAT)
                        rt_slice_set(rt, lat, units, patch)
                    s = setup.inputs(rt.units_slice(lat, units), i)
                else:
                    s = State.from_tensors(comm.recv_tensors(pf.peer(-1), ("fwd",) + key, dtype, dev, FWD))
                s = setup.model(s, ctx, a, b)
                if not last:
                    sends.append(comm.send_tensors(s.tensors(), pf.peer(1), ("fwd",) + key, FWD))
                elif per_patch:   # update this patch and send it back at once (no cfg gather)
                    new = rt.sched.step(rt.units_slice(lat, units), setup.guided(s.x), i)
                    rt_slice_set(rt, lat, units, new)
                    sends.append(comm.send_tensors([new], pf.peer(1), ("lat", str(setup.plan), False, j), LAT))
                else:
                    eps_parts.append((units, s.x))
            if last and not per_patch:
                sends += self._update_step(setup, lat, eps_parts, i, n, steps, warm, parts, mine)
            sends = [w for w in sends if not w.is_completed()]
        ctx.finish()
        wait_all(sends)
        return self._collect(setup, lat, steps, warm, parts, mine)

    def _update_step(self, setup, lat, eps_parts, i, n, steps, warm, parts, mine):
        """Last stage, whole step at once: guidance (one cfg all-gather for all patches),
        scheduler update, then the next step's patches go back to stage 0."""
        rt, comm, pf, seq = setup.rt, setup.rt.world.comm, setup.group("pipefusion"), setup.seq
        eps = setup.guided(torch.cat([e.float().flatten(1) for _, e in eps_parts], dim=1))
        k = 0
        for units, e in eps_parts:
            size = e[0].numel()
            part = eps[:, k:k + size].view(eps.shape[0], *e.shape[1:])
            k += size
            rt_slice_set(rt, lat, units, rt.sched.step(rt.units_slice(lat, units), part, i))
        if n + 1 >= len(steps):
            return []
        if n < warm and seq.size > 1:    # slices change from contiguous to per patch: share the update
            whole = comm.all_gather(rt.units_slice(lat, mine((0, rt.units))), seq)
            lat.copy_(rt.units_cat(whole.unbind(0)))
        out = []
        for j, span in enumerate(parts(n + 1)):
            units = mine(span)
            out.append(comm.send_tensors([rt.units_slice(lat, units).contiguous()], pf.peer(1),
                                         ("lat", str(setup.plan), n + 1 < warm, j), LAT))
        return out

    def _collect(self, setup, lat, steps, warm, parts, mine):
        """The final latent from the last stage's slices, on every rank."""
        rt, comm, pf, seq = setup.rt, setup.rt.world.comm, setup.group("pipefusion"), setup.seq
        if pf.index == pf.size - 1 and seq.size > 1:
            gathered = comm.all_gather(lat, seq)
            for span in parts(len(steps) - 1):
                for r in range(seq.size):
                    units = setup.chunk(r, seq.size, span)
                    rt_slice_set(rt, lat, units, rt.units_slice(gathered[r], units))
        lat = comm.broadcast(lat.contiguous(), pf.size - 1, pf)
        return setup.gather(lat, seq=setup.rt.world.group((setup.rt.world.rank,)))


def rt_slice_set(rt, lat: torch.Tensor, units, value: torch.Tensor) -> None:
    """lat[units] = value (lat holds every unit of this rank's images)."""
    rt.units_slice(lat, units).copy_(value)


RUNNER = Runner("pipefusion", loop=PipeFusion)
