"""The collectives the strategies call, through one thin wrapper that counts what each rank
sends. A Group of one rank communicates nothing (every call returns at once).

Bytes counted are those this rank puts on the wire with ring algorithms, the convention
of planner/cost/comm.py:
    all_gather       (n-1) x the local tensor
    all_reduce       2 (n-1)/n x the tensor (reduce-scatter + all-gather)
    all_to_all       (n-1)/n x the tensor (the 1/n it keeps stays home)
    broadcast        the tensor, for every rank of the chain but the last (root first)
    send (p2p)       the tensor
`Comm.sent` is the total; `Comm.by_kind` splits it by collective; `Comm.seconds` is the
wall time this rank spent inside blocking collectives (waiting included), by kind.
"""
from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


# torch >= 2.10 renamed all_gather_into_tensor (which now warns) to all_gather_single
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


@dataclass(frozen=True)
class Group:
    """One process group as this rank sees it: its global ranks (in group order), the
    torch ProcessGroup (None for a group of one), and this rank's index in it."""

    ranks: tuple[int, ...]
    pg: object
    index: int

    @property
    def size(self) -> int:
        return len(self.ranks)

    def peer(self, offset: int) -> int:
        """Global rank `offset` places after this one in the group (cyclically)."""
        return self.ranks[(self.index + offset) % self.size]


def solo(rank: int) -> Group:
    return Group((rank,), None, 0)


class Comm:
    def __init__(self, rank: int = 0):
        self.rank = rank
        self.sent = 0
        self.by_kind: Counter = Counter()
        self.calls: Counter = Counter()
        self.seconds: Counter = Counter()
        self._shapes_sent: set = set()
        self._shapes_recv: dict = {}

    def forget_shapes(self) -> None:
        """A new job: channels of the last one may reuse their keys with other shapes."""
        self._shapes_sent.clear()
        self._shapes_recv.clear()

    def _count(self, kind: str, nbytes: float) -> None:
        self.sent += int(nbytes)
        self.by_kind[kind] += int(nbytes)
        self.calls[kind] += 1

    @contextmanager
    def _timed(self, kind: str):
        t0 = time.perf_counter()
        yield
        self.seconds[kind] += time.perf_counter() - t0

    @staticmethod
    def _bytes(t: torch.Tensor) -> int:
        return t.numel() * t.element_size()

    # ---------------------------------------------------------------- collectives
    def all_gather(self, t: torch.Tensor, g: Group) -> torch.Tensor:
        """[n, *t.shape]: every member's t, in group order."""
        with self._timed("all_gather"):
            out, work = self.all_gather_async(t, g)
            if work is not None:
                work.wait()
        return out

    def all_gather_async(self, t: torch.Tensor, g: Group):
        """(output buffer, work) -- the buffer is valid after work.wait(); work is None for a
        group of one."""
        t = t.contiguous()
        if g.size == 1:
            return t[None].clone(), None
        # the output is n copies of t stacked along dim 0 (what gloo and nccl both accept)
        out = torch.empty((g.size * t.shape[0],) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
        self._count("all_gather", (g.size - 1) * self._bytes(t))
        work = _all_gather_single(out, t, group=g.pg, async_op=True)
        return out.view((g.size,) + tuple(t.shape)), work

    def all_reduce(self, t: torch.Tensor, g: Group) -> torch.Tensor:
        if g.size == 1:
            return t
        t = t.contiguous()
        self._count("all_reduce", 2 * (g.size - 1) / g.size * self._bytes(t))
        with self._timed("all_reduce"):
            dist.all_reduce(t, group=g.pg)
        return t

    def all_to_all(self, t: torch.Tensor, g: Group) -> torch.Tensor:
        """t is cut into n equal parts along dim 0; part j goes to member j; the result
        holds member j's part for this rank at position j."""
        if g.size == 1:
            return t
        t = t.contiguous()
        out = torch.empty_like(t)
        self._count("all_to_all", (g.size - 1) / g.size * self._bytes(t))
        with self._timed("all_to_all"):
            dist.all_to_all_single(out, t, group=g.pg)
        return out

    def broadcast(self, t: torch.Tensor, src_index: int, g: Group) -> torch.Tensor:
        """Member `src_index`'s t on every member (t must have the right shape everywhere)."""
        if g.size == 1:
            return t
        t = t.contiguous()
        if (g.index - src_index) % g.size < g.size - 1:
            self._count("broadcast", self._bytes(t))
        with self._timed("broadcast"):
            dist.broadcast(t, src=g.ranks[src_index], group=g.pg)
        return t

    def broadcast_tensors(self, ts: list[torch.Tensor], src_index: int, g: Group) -> list[torch.Tensor]:
        """Member `src_index`'s tensors, as one flat message; other members pass tensors of
        the right shapes and dtype (their values are ignored)."""
        if g.size == 1:
            return ts
        flat = torch.cat([t.reshape(-1) for t in ts]) if g.index == src_index else \
            torch.empty(sum(t.numel() for t in ts), dtype=ts[0].dtype, device=ts[0].device)
        flat = self.broadcast(flat, src_index, g)
        out, i = [], 0
        for t in ts:
            out.append(flat[i:i + t.numel()].view(t.shape))
            i += t.numel()
        return out

    def barrier(self, g: Group | None = None) -> None:
        if g is None:
            if dist.is_initialized() and dist.get_world_size() > 1:
                dist.barrier()
        elif g.size > 1:
            dist.barrier(group=g.pg)

    # ---------------------------------------------------------------- point to point
    def isend(self, t: torch.Tensor, dst: int, tag: int = 0):
        t = t.contiguous()
        self._count("p2p", self._bytes(t))
        return dist.isend(t, dst, tag=tag)

    def irecv(self, t: torch.Tensor, src: int, tag: int = 0):
        return dist.irecv(t, src, tag=tag)

    def exchange(self, send: torch.Tensor, dst: int, recv: torch.Tensor, src: int, tag: int = 0) -> list:
        """Post a send and a receive together (a ring pass); returns the works to wait on."""
        send = send.contiguous()
        self._count("p2p", self._bytes(send))
        ops = [dist.P2POp(dist.isend, send, dst, tag=tag), dist.P2POp(dist.irecv, recv, src, tag=tag)]
        return dist.batch_isend_irecv(ops)

    def send_tensors(self, ts: list[torch.Tensor], dst: int, key, tag: int = 0) -> "Sent":
        """Send a list of tensors of one dtype as one message. Their shapes travel once per
        `key` (a channel whose shapes never change). Keep the returned handle until it
        completes: it holds the buffers."""
        works, keep = [], []
        if key not in self._shapes_sent:
            header = torch.tensor([len(ts)] + [d for t in ts for d in (t.dim(), *t.shape)], dtype=torch.int64)
            size = torch.tensor([header.numel()], dtype=torch.int64)
            size, header = size.to(ts[0].device), header.to(ts[0].device)
            works += [self.isend(size, dst, tag + 1), self.isend(header, dst, tag + 2)]
            keep += [size, header]
            self._shapes_sent.add(key)
        flat = torch.cat([t.reshape(-1) for t in ts])
        works.append(self.isend(flat, dst, tag))
        return Sent(works, keep + [flat])

    def recv_tensors(self, src: int, key, dtype: torch.dtype, device, tag: int = 0) -> list[torch.Tensor]:
        shapes = self._shapes_recv.get(key)
        if shapes is None:
            size = torch.empty(1, dtype=torch.int64, device=device)
            self.irecv(size, src, tag + 1).wait()
            header = torch.empty(int(size.item()), dtype=torch.int64, device=device)
            self.irecv(header, src, tag + 2).wait()
            h, shapes, i = header.tolist(), [], 1
            for _ in range(h[0]):
                nd = h[i]
                shapes.append(tuple(h[i + 1:i + 1 + nd]))
                i += 1 + nd
            self._shapes_recv[key] = shapes
        total = sum(int(torch.Size(s).numel()) for s in shapes)
        flat = torch.empty(total, dtype=dtype, device=device)
        with self._timed("p2p"):
            self.irecv(flat, src, tag).wait()
        out, i = [], 0
        for s in shapes:
            n = int(torch.Size(s).numel())
            out.append(flat[i:i + n].view(s))
            i += n
        return out


class Sent:
    """Asynchronous sends in flight, with the buffers they read."""

    def __init__(self, works: list, keep: list):
        self.works, self.keep = works, keep

    def is_completed(self) -> bool:
        return all(w.is_completed() for w in self.works)

    def wait(self) -> None:
        for w in self.works:
            w.wait()


def wait_all(works) -> None:
    for w in works:
        w.wait()
