"""Timing one operation properly, and a progress bar.

Why this shape: a single call of a small op is shorter than the timer's resolution and
its launch cost, so each repeat times a loop of `inner` calls (chosen so that a repeat
lasts about `target_s`) and divides; warm-up calls come first (allocator, oneDNN/cuBLAS
algorithm choice, caches); the median over repeats drops the outliers of a shared
machine. On CUDA the loop is bracketed by CUDA events and synchronised, since kernel
launches return before the kernel has run.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 2          # untimed calls before measuring
    repeats: int = 5         # timed repeats; the median is kept
    target_s: float = 0.01   # aim for one repeat (inner loop) lasting about this long
    max_inner: int = 200     # cap on calls per repeat (tiny ops)


def _cuda_sync(device: str) -> None:
    if device == "cuda":
        import torch
        torch.cuda.synchronize()


def _loop_time(fn: Callable[[], object], inner: int, device: str) -> float:
    """Seconds for `inner` back-to-back calls, the device work included."""
    if device == "cuda":
        import torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return time.perf_counter() - t0


def time_op(fn: Callable[[], object], device: str = "cpu", cfg: TimingConfig = TimingConfig()) -> float:
    """Median seconds per call of fn() on `device` ("cpu" or "cuda")."""
    _cuda_sync(device)
    # The first call also serves to size the inner loop.
    first = _loop_time(fn, 1, device)
    for _ in range(max(cfg.warmup - 1, 0)):
        _loop_time(fn, 1, device)
    probe = min(first, _loop_time(fn, 1, device)) if cfg.warmup > 0 else first
    inner = int(min(cfg.max_inner, max(1, math.ceil(cfg.target_s / max(probe, 1e-9)))))
    samples = [_loop_time(fn, inner, device) / inner for _ in range(max(cfg.repeats, 1))]
    _cuda_sync(device)
    return statistics.median(samples)


class Progress:
    """A one-line progress bar on stderr: `[#####.....]  45%  label`. Silent when
    disabled (tests, --quiet) so that stderr keeps the one-line error convention."""

    def __init__(self, total: int, enabled: bool = True, width: int = 30, stream=None):
        self.total = max(int(total), 1)
        self.done = 0
        self.enabled = enabled
        self.width = width
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._last = 0.0

    def add_total(self, n: int) -> None:
        self.total += max(int(n), 0)

    def tick(self, label: str = "", n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        now = time.perf_counter()
        # redraw at most ~10 times a second, and always at the end
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            frac = self.done / self.total
            fill = int(round(frac * self.width))
            line = (f"\r[{'#' * fill}{'.' * (self.width - fill)}] {frac * 100:3.0f}% "
                    f"{now - self.t0:5.1f}s {label[:40]:<40}")
            self.stream.write(line)
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
