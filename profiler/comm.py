"""Collectives between local processes on torch.distributed (gloo on CPU, nccl on GPUs).

N ranks are started as the executor's are (executor/procs.py: forked from a forkserver on
CPU, spawned on CUDA; they die with the profiler); each kind is timed over message sizes,
per group size (2, 4, ... up to N).

nbytes follows planner/cost/comm.py's collective_time, so a measured curve can replace
the model one for one:
- all_reduce, broadcast: the buffer on each rank;
- all_gather: the gathered OUTPUT on each rank (each rank contributes nbytes / n);
- reduce_scatter: the INPUT on each rank (each rank keeps nbytes / n);
- all_to_all: the bytes each rank holds before the exchange (all_to_all_single);
- p2p: one message from rank 0 to rank 1 (half a ping-pong round trip, which avoids
  comparing clocks of two processes).

Timing: ranks are lined up by a tiny all-reduce before each repeat of `inner` operations;
`inner` is derived from a warm-up time agreed on by all ranks (MAX), so every rank issues
the same sequence of calls. Two modes (CommConfig.between_s):
- back-to-back (between_s 0, GPUs): `inner` calls in a row, as nccl-tests time them; the
  time of a repeat is the slowest rank's (an all-reduce MAX), the median over repeats kept;
- interleaved (CPU): every rank computes about between_s of matrix products before each
  call and times the call alone, as the executor's ranks issue collectives between a
  block's ops (executor/comm.py times the same span: the call, waiting for the peer
  included); the mean over calls and ranks (_time). On a CPU host the ranks' compute
  and gloo's threads (the process group's worker, the transport's event loop) share the
  cores: a call's data waits until the peer's thread gets a core, which its compute holds
  for up to a scheduler slice. Measured on the 2-core VM this was written on (gloo, 2
  ranks, all_to_all of 64 KiB, clocks compared across the ranks, 100 calls per point):
  0.2-0.3 ms per call back-to-back; 0.3-2.1 ms, typically ~1 ms, with 1-6 ms of compute
  before each call, heavy-tailed (median 0.2-0.4 ms, the mean several times it) and
  nearly all of it after both ranks had arrived; the executor's ulysses=2 on
  sd3-medium --scale small spent ~1.4 ms per call.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

from planner.hardware import COLLECTIVE_KINDS as KINDS

from .timing import _loop_time


class CommError(RuntimeError):
    """The distributed measurement failed (a worker raised, or it timed out)."""


@dataclass(frozen=True)
class CommConfig:
    backend: str = "gloo"
    device: str = "cpu"
    dtype: str = "fp32"
    nproc: int = 2
    sizes: tuple[int, ...] = tuple(1024 * 4 ** k for k in range(9))    # 1 KiB .. 64 MiB
    kinds: tuple[str, ...] = KINDS
    group_sizes: tuple[int, ...] = (2,)
    threads: int = 1
    warmup: int = 2
    repeats: int = 5
    target_s: float = 0.005       # one repeat lasts about this long (small messages loop)
    max_inner: int = 50
    timeout_s: float = 600.0
    concurrency_repeats: int = 18     # CPU: the concurrent-compute measurement (_concurrency)
    # seconds of compute every rank runs before each timed call (module doc); 0: back-to-back
    # (profiler/run.py sets CPU_BETWEEN_S for CPU profiles)
    between_s: float = 0.0
    min_inner: int = 8                # interleaved: calls per repeat at least (the mean needs many)


# ---------------------------------------------------------------- worker side
def _ops(kind, numel, g, rank, dt, dev, group, dist, torch):
    """fn() running one `kind` on `group` with nbytes = numel elements (see module doc)."""
    r = lambda k: torch.ones(k, dtype=dt, device=dev)
    if kind == "all_reduce":
        x = r(numel)
        return lambda: dist.all_reduce(x, group=group)
    if kind == "broadcast":
        x = r(numel)
        return lambda: dist.broadcast(x, src=0, group=group)
    if kind == "all_gather":
        inp, out = r(numel // g), r(numel)
        ag = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        return lambda: ag(out, inp, group=group)
    if kind == "reduce_scatter":
        inp, out = r(numel), r(numel // g)
        rs = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        return lambda: rs(out, inp, group=group)
    if kind == "all_to_all":
        inp, out = r(numel), r(numel)
        return lambda: dist.all_to_all_single(out, inp, group=group)
    if kind == "p2p":    # ranks 0 and 1 ping-pong; the measured time is halved
        x = r(numel)
        peer = 1 - rank

        def pingpong():
            if rank == 0:
                dist.send(x, peer)
                dist.recv(x, peer)
            else:
                dist.recv(x, peer)
                dist.send(x, peer)
        return pingpong
    raise ValueError(f"unknown collective {kind!r}")


def _worker(rank: int, n: int, cfg: dict, queue) -> dict | None:
    """One rank (executor/procs.py starts it): every measurement; rank 0 returns them."""
    import warnings
    warnings.filterwarnings("ignore")          # deprecation chatter would break stderr's one-line rule
    import torch

    from executor.procs import init_group
    from .compute import _torch_dtype, ELEM
    torch.set_num_threads(cfg["threads"])
    dev = "cpu"
    if cfg["device"] == "cuda":
        torch.cuda.set_device(rank)
        dev = f"cuda:{rank}"
    dist = init_group(cfg["backend"], min(cfg["timeout_s"], 300))
    dt, elem = _torch_dtype(cfg["dtype"]), ELEM[cfg["dtype"]]
    sync = (lambda: torch.cuda.synchronize()) if dev != "cpu" else (lambda: None)
    flag = torch.zeros(1, dtype=torch.float64, device=dev)

    def agree_max(values: list[float], group) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
        return t.tolist()

    def agree_mean(values: list[float], group, size: int) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t, group=group)
        return (t / size).tolist()

    try:
        burst = _burst(torch, dt, dev, cfg["between_s"], lambda v: agree_max(v, None)) if cfg["between_s"] > 0 else None
        if dev == "cpu":
            conc = _concurrency(torch, dist, dt, rank, n, cfg["concurrency_repeats"])
            if rank == 0:
                queue.put(("tick", "concurrent compute"))
        curves, unsupported = [], {}
        for g in cfg["group_sizes"]:
            # every rank must create every group, members or not
            group = dist.new_group(list(range(g))) if g < n else None
            member = rank < g
            for kind in cfg["kinds"]:
                if kind == "p2p" and g != 2:
                    continue
                sizes, times = [], []
                for nbytes in cfg["sizes"]:
                    numel = max(nbytes // elem // g, 1) * g
                    res = None
                    if member and kind not in unsupported:
                        try:
                            fn = _ops(kind, numel, g, rank, dt, dev, group, dist, torch)
                            res = _time(fn, cfg, sync, lambda: dist.all_reduce(flag, group=group),
                                        lambda v: agree_max(v, group), burst,
                                        lambda v: agree_mean(v, group, g))
                        except (RuntimeError, NotImplementedError, ValueError) as e:
                            # unsupported ops fail on every rank before any traffic
                            unsupported[kind] = str(e).strip().splitlines()[0][:200] if str(e) else type(e).__name__
                    dist.barrier()
                    if rank == 0:
                        queue.put(("tick", f"{kind} n={g} {nbytes >> 10} KiB"))
                    if res is None:
                        continue
                    if kind == "p2p":
                        res = res / 2
                    sizes.append(numel * elem)
                    times.append(res)
                if rank == 0 and sizes:
                    curves.append({"kind": kind, "nranks": g, "sizes": sizes, "times": times})
        if rank != 0:
            return None
        out = {"curves": curves, "unsupported": unsupported}
        return out | {"concurrency": conc} if dev == "cpu" else out
    finally:
        dist.destroy_process_group()


def _concurrency(torch, dist, dt, rank: int, n: int, repeats: int) -> dict:
    """Median seconds of one transformer MLP (1,024 tokens, hidden 512, FFN 2,048: a
    working set of ~20 MB, beyond the per-core caches as a model block's is) on rank 0
    alone, the others waiting in a barrier, and then on every rank at once (the mean over
    ranks): ranks on one host share its cores (SMT siblings), last-level cache and memory
    bandwidth. CPU only; a GPU rank owns its device."""
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(1024, 512, dtype=dt, generator=g)
    w1 = torch.randn(512, 2048, dtype=dt, generator=g) / 512 ** 0.5
    w2 = torch.randn(2048, 512, dtype=dt, generator=g) / 2048 ** 0.5

    def work():
        h = torch.nn.functional.gelu(x @ w1)
        return x + h @ w2

    def times(k: int) -> list[float]:
        return [_loop_time(work, 1, "cpu") for _ in range(k)]

    # alone and together alternate in rounds, so that a slow spell of the host (a noisy
    # neighbour on a VM) does not land on one side only; medians over all rounds
    work()
    rounds = 3
    alone, together = [], []
    for _ in range(rounds):
        dist.barrier()
        alone += times(max(1, repeats // rounds)) if rank == 0 else []
        dist.barrier()
        together += times(max(1, repeats // rounds))
    t = torch.tensor([statistics.median(together), statistics.median(alone) if alone else 0.0],
                     dtype=torch.float64)
    dist.all_reduce(t)                            # the alone entry: only rank 0's is non-zero
    mean_together, alone_s = t[0].item() / n, t[1].item()
    return {"nproc": n, "alone_us": alone_s * 1e6, "together_us": mean_together * 1e6,
            "slowdown": max(1.0, mean_together / alone_s)}


def _burst(torch, dt, dev: str, seconds: float, agree_max):
    """fn() computing about `seconds` of 128x128 matrix products (the same count on every
    rank: the slowest rank's calibration), standing in for a model's ops between two
    collectives."""
    a = torch.randn(128, 128, dtype=dt, device=dev) / 128 ** 0.5
    b = torch.randn(128, 128, dtype=dt, device=dev)

    def one():
        torch.mm(a, b, out=b)
    for _ in range(3):
        one()
    per = agree_max([_loop_time(one, 50, dev) / 50])[0]
    reps = max(1, round(seconds / max(per, 1e-9)))

    def burst():
        for _ in range(reps):
            one()
    return burst


def _time(fn, cfg: dict, sync, line_up, agree_max, burst=None, agree_mean=None) -> float:
    """Seconds per call: back-to-back, the median over repeats, each the slowest member's;
    with `burst` (interleaved mode, module doc), the calls alone, each after a burst, the
    mean over calls and members (agree_mean)."""
    for _ in range(cfg["warmup"]):
        if burst:
            burst()
        fn()
    sync()
    line_up()
    t0 = time.perf_counter()
    fn()
    sync()
    warm = agree_max([time.perf_counter() - t0])[0]
    per_call = warm + (cfg["between_s"] if burst else 0.0)
    inner = int(min(cfg["max_inner"], max(cfg["min_inner"] if burst else 1,
                                           math.ceil(cfg["target_s"] / max(per_call, 1e-7)))))
    reps = []
    for _ in range(cfg["repeats"]):
        line_up()
        sync()
        if burst is None:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            reps.append((time.perf_counter() - t0) / inner)
            continue
        for _ in range(inner):
            burst()
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            reps.append(time.perf_counter() - t0)
    if burst is None:
        return statistics.median(agree_max(reps))
    # interleaved: the mean over every call and rank, not a median: the cost has a heavy
    # tail (a call whose peer's transport thread waits for a core behind compute), and the
    # ranks' wall time pays the mean; averaged over the members, as the wait of the one
    # that arrived first is the other's compute
    return agree_mean([statistics.fmean(reps)])[0]


# ---------------------------------------------------------------- parent side
def total_steps(cfg: CommConfig) -> int:
    """Progress ticks measure_comm will report."""
    per = sum(1 for g in cfg.group_sizes for k in cfg.kinds if k != "p2p" or g == 2)
    return per * len(cfg.sizes) + (cfg.device == "cpu")


def measure_comm(cfg: CommConfig, progress=None) -> dict:
    """{"curves": [{"kind", "nranks", "sizes" (bytes), "times" (s)}], "unsupported": {kind: why},
    "concurrency": {...} (CPU: _concurrency)}.
    Raises CommError if a worker fails or the run exceeds cfg.timeout_s. The workers are
    the executor's kind of ranks (executor/procs.py): they die with this process, and a
    failure names the rank."""
    from executor.procs import RankFailed, start
    ranks = start(_worker, cfg.nproc, (asdict(cfg),), method="forkserver" if cfg.backend == "gloo" else "spawn",
                  preload=(__name__,), messages=True, store_timeout_s=min(cfg.timeout_s, 300))

    def drain():
        while not ranks.messages.empty():
            what, payload = ranks.messages.get()
            if what == "tick" and progress:
                progress.tick(payload)
    try:
        result = ranks.wait(deadline_s=cfg.timeout_s, on_poll=drain)
    except RankFailed as e:
        raise CommError(f"{cfg.backend} measurement failed: {e}") from None
    drain()
    if result is None:
        raise CommError(f"{cfg.backend} measurement ended without a result")
    return result
