"""A small discrete-event timeline: per rank, a compute lane and a communication lane.

Tasks are added in an order that respects their dependencies; each starts when its lane
on its rank is free and its inputs are ready (`after`), so the lanes execute in order,
like CUDA streams. Denoising loops (planner/cost/engine.py and the loop strategies) build
the first steps of denoising here; the step time, pipeline bubbles and warm-up cost
are read off the result, and the same tasks become the Gantt chart and Chrome trace.

`LoopTime` is what a loop answers: the denoising loop's time on the critical rank and
where it goes. This module is below the strategies and the cost model (both build these).
"""
from __future__ import annotations

from dataclasses import dataclass, field

COMPUTE, COMM = "compute", "comm"


@dataclass(frozen=True, slots=True)
class Task:
    rank: int
    lane: str
    start: float
    end: float
    label: str
    step: int


@dataclass
class Timeline:
    """`ranks` rows; a row may stand for several ranks that do the same work (`labels`)."""

    ranks: int
    labels: list[str] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    _free: dict = field(default_factory=dict)

    def label(self, row: int) -> str:
        return self.labels[row] if row < len(self.labels) else f"rank {row}"

    def add(self, rank: int, lane: str, dur: float, after: float = 0.0, label: str = "", step: int = 0) -> float:
        """Schedule a task; returns its end time."""
        start = max(self._free.get((rank, lane), 0.0), after)
        end = start + max(dur, 0.0)
        self._free[(rank, lane)] = end
        if dur > 0:
            self.tasks.append(Task(rank, lane, start, end, label, step))
        return end

    def free_at(self, rank: int, lane: str = COMPUTE) -> float:
        return self._free.get((rank, lane), 0.0)

    @property
    def makespan(self) -> float:
        return max((t.end for t in self.tasks), default=0.0)

    def busy(self, rank: int, lane: str = COMPUTE) -> float:
        return sum(t.end - t.start for t in self.tasks if t.rank == rank and t.lane == lane)

    def step_end(self, step: int) -> float:
        """When the last task of denoising step `step` ends (0-based)."""
        return max((t.end for t in self.tasks if t.step == step), default=0.0)

    def wait(self, rank: int, until: float, lane: str = COMPUTE) -> None:
        """Hold a lane idle until `until` (a synchronisation point)."""
        self._free[(rank, lane)] = max(self.free_at(rank, lane), until)

    def to_dict(self) -> dict:
        """JSON form; times in seconds, rounded to the nanosecond."""
        steps = sorted({t.step for t in self.tasks})
        return {"rows": [self.label(r) for r in range(self.ranks)],
                "makespan_s": round(self.makespan, 9),
                "step_ends_s": [round(self.step_end(s), 9) for s in steps],
                "tasks": [{"row": t.rank, "lane": t.lane, "start": round(t.start, 9), "end": round(t.end, 9),
                           "label": t.label, "step": t.step} for t in self.tasks]}

    def to_chrome_trace(self) -> dict:
        """Chrome trace format (chrome://tracing, Perfetto): one process per rank,
        one thread per lane, times in microseconds."""
        events = []
        for r in range(self.ranks):
            events.append({"ph": "M", "name": "process_name", "pid": r, "args": {"name": self.label(r)}})
            for tid, lane in enumerate((COMPUTE, COMM)):
                events.append({"ph": "M", "name": "thread_name", "pid": r, "tid": tid, "args": {"name": lane}})
        for t in self.tasks:
            events.append({"ph": "X", "name": t.label or t.lane, "cat": t.lane, "pid": t.rank,
                           "tid": 0 if t.lane == COMPUTE else 1, "ts": round(t.start * 1e6, 3),
                           "dur": round((t.end - t.start) * 1e6, 3), "args": {"step": t.step}})
        return {"traceEvents": events, "displayTimeUnit": "ms"}


@dataclass
class LoopTime:
    """A denoising loop's time on the critical rank and its parts.

    compute, comm and other are what every step would cost in steady state; whatever
    the loop takes beyond them (synchronous warm-up steps, pipeline fill and bubbles) is
    the bubble."""

    total: float
    steady_step: float
    compute: float            # compute on the critical rank, all steps at steady state
    comm: float               # exposed communication, all steps at steady state
    other: float              # per-step scheduler/launch overheads
    comm_bytes_per_step: float
    timeline: Timeline | None = None
    rank_blocks: list[slice] | None = None   # blocks each pipeline stage holds (None: all)
    cuts: list[slice] | None = None          # the loop's partition of the blocks, if any
    notes: list[str] = field(default_factory=list)

    @property
    def bubble(self) -> float:
        return max(0.0, self.total - self.compute - self.comm - self.other)
