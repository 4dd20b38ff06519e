"""A small discrete-event timeline, and the one summary every denoising loop reports.

Per row (a rank, or ranks that do the same work) there is a compute lane (the stream
the rank's kernels run in: compute, host work and blocking collectives), a
communication lane (transfers that run beside it) and a host lane (the CPU issuing the
kernels, ahead of the GPU: tagged `issue`, drawn, not counted; where the GPU waits for
it, the wait is a host task on the compute lane). Tasks are added in an order that
respects their dependencies; each starts when its lane on its row is free and its inputs
are ready (`after`), so the lanes execute in order, like CUDA streams. Every task is
tagged with its part: compute, communication (exposed, with the parallel dimension it
runs over), host overhead (scheduler, Python loop), a transfer hidden under other work,
or redundant work (the last two are drawn, not counted).

A loop (planner/cost/engine.py, the loop strategies) simulates each distinct *unit* of
its work once, each unit a `step` index on the timeline (a warm-up step, the first
steady step with the pipeline fill, a steady step, a round of several steps), and says
how often each unit repeats; `summarise` extrapolates: a unit lasts from the end of the
previous one to its own end, the loop is every unit times its repeats, and on the
critical row each unit splits into compute, communication per dimension, host and
bubble (whatever of the unit nothing counted fills). Warm-up units count whole as
warm-up. So every loop reports the same parts, computed in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

COMPUTE, COMM = "compute", "comm"          # lanes, and the parts of the same names
HOST = "host"                              # host time the GPU waits for (part); the host lane
ISSUE = "issue"                            # the host issuing kernels on its lane (drawn)
HIDDEN = "hidden"                          # a transfer that overlaps other work
REDUNDANT = "redundant"                    # work that does not advance the result (extra iterations)
# Parts summarise() counts; every other part of a unit's time (hidden transfers, redundant
# work, idle waits) is its bubble
COUNTED = (COMPUTE, COMM, HOST)


@dataclass(frozen=True, slots=True)
class Task:
    rank: int
    lane: str
    start: float
    end: float
    label: str
    step: int
    part: str = COMPUTE
    dim: str | None = None        # the parallel dimension a communication runs over


@dataclass
class Timeline:
    """`ranks` rows; a row may stand for several ranks that do the same work (`labels`).
    record=False keeps only what summarise reads (each step's end, the counted parts per
    step and row), not the tasks: the search simulates thousands of loops, the reports one."""

    ranks: int
    labels: list[str] = field(default_factory=list)
    record: bool = True
    tasks: list[Task] = field(default_factory=list)
    _free: dict = field(default_factory=dict)
    _ends: dict = field(default_factory=dict)      # step -> when its last task ends
    _sums: dict = field(default_factory=dict)      # (step, row) -> {part or (COMM, dim): seconds}

    def label(self, row: int) -> str:
        return self.labels[row] if row < len(self.labels) else f"rank {row}"

    def add(self, rank: int, lane: str, dur: float, after: float = 0.0, label: str = "", step: int = 0,
            part: str | None = None, dim: str | None = None, occupy: bool = True) -> float:
        """Schedule a task; returns its end time. part: default the lane's (COMPUTE or COMM).
        occupy=False: drawn, but the lane stays free (transfers that run beside others)."""
        start = max(self._free.get((rank, lane), 0.0), after)
        end = start + max(dur, 0.0)
        if occupy:
            self._free[(rank, lane)] = end
        if dur > 0:
            part = part or lane
            if end > self._ends.get(step, 0.0):
                self._ends[step] = end
            if part in COUNTED:
                key = (COMM, dim) if part == COMM else part
                sums = self._sums.setdefault((step, rank), {})
                sums[key] = sums.get(key, 0.0) + (end - start)
            if self.record:
                self.tasks.append(Task(rank, lane, start, end, label, step, part, dim))
        return end

    def block(self, rank: int, dur: float, after: float = 0.0, label: str = "", step: int = 0,
              dim: str | None = None) -> float:
        """Exposed communication: a blocking collective holds the row's compute stream."""
        return self.add(rank, COMPUTE, dur, after=after, label=label, step=step, part=COMM, dim=dim)

    def host(self, rank: int, dur: float, after: float = 0.0, label: str = "scheduler", step: int = 0) -> float:
        return self.add(rank, COMPUTE, dur, after=after, label=label, step=step, part=HOST)

    def free_at(self, rank: int, lane: str = COMPUTE) -> float:
        return self._free.get((rank, lane), 0.0)

    @property
    def makespan(self) -> float:
        return max(self._ends.values(), default=0.0)

    def busy(self, rank: int, lane: str = COMPUTE) -> float:
        return sum(t.end - t.start for t in self.tasks if t.rank == rank and t.lane == lane)

    def step_end(self, step: int) -> float:
        """When the last task of denoising step `step` ends (0-based)."""
        return self._ends.get(step, 0.0)

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
                           "label": t.label, "step": t.step, "part": t.part}
                          | ({"dim": t.dim} if t.dim else {}) for t in self.tasks]}

    def to_chrome_trace(self) -> dict:
        """Chrome trace format (chrome://tracing, Perfetto): one process per rank,
        one thread per lane, times in microseconds."""
        events = []
        lanes = (COMPUTE, COMM, HOST)
        for r in range(self.ranks):
            events.append({"ph": "M", "name": "process_name", "pid": r, "args": {"name": self.label(r)}})
            for tid, lane in enumerate(lanes):
                events.append({"ph": "M", "name": "thread_name", "pid": r, "tid": tid, "args": {"name": lane}})
        for t in self.tasks:
            events.append({"ph": "X", "name": t.label or t.lane, "cat": t.lane, "pid": t.rank,
                           "tid": lanes.index(t.lane), "ts": round(t.start * 1e6, 3),
                           "dur": round((t.end - t.start) * 1e6, 3), "args": {"step": t.step}})
        return {"traceEvents": events, "displayTimeUnit": "ms"}


@dataclass(frozen=True)
class PassPieces:
    """One pass of a loop's blocks (cost.engine.BlockCosts) as run_pieces lays it out:
    the host's issue time (kernels, then extra host work such as the scheduler), the
    compute stream's compute, each dimension's exposed communication, and the wait for
    the host where it is slower (BlockCosts.host_exposed). Loops compute these once per
    stage and run them for every patch."""

    issue: float
    compute: float
    exposed: tuple[tuple[str, float], ...]
    waits: float


def pass_pieces(costs, sel, eta: float, sync: bool = False, extra_host: float = 0.0) -> PassPieces:
    issue = (float(costs.host[sel].sum()) if costs.host is not None else 0.0) + extra_host
    return PassPieces(issue, float(costs.compute[sel].sum()), tuple(costs.exposed_dims(sel, eta, sync).items()),
                      costs.host_exposed(sel, extra_host))


def run_pieces(tl: Timeline, row: int, pieces: PassPieces, after: float, label: str, step: int) -> float:
    """A pass on `row`, no earlier than `after`: the host lane issues while the compute
    stream runs the compute, the exposed communication, and waits for the host; its end."""
    start = max(tl.free_at(row), after)
    tl.add(row, HOST, pieces.issue, after=start, label=f"{label}: issue kernels", step=step, part=ISSUE)
    end = tl.add(row, COMPUTE, pieces.compute, after=start, label=label, step=step)
    for dim, secs in pieces.exposed:
        end = tl.block(row, secs, label=f"{label}: {dim}", step=step, dim=dim)
    if pieces.waits > 1e-15:
        end = tl.host(row, pieces.waits, label=f"{label}: waits for the host", step=step)
    return end


def run_stream(tl: Timeline, row: int, pieces: PassPieces, arrivals: list[float], labels: list[str], step: int,
               then: tuple[tuple[str, float, str], ...] = (), send: float | None = None,
               send_label: str = "activation") -> list[float]:
    """run_pieces for each of `arrivals` in turn, each followed by the blocking pieces
    `then` ((dimension, seconds, label)) and, if `send` is given, a hidden transfer of
    `send` seconds on the row's comm lane: a pipeline stage's patches, passed on. Returns
    when each one's pass (or send) ends. The same timeline as the loop of run_pieces,
    tl.block and tl.add; without recorded tasks (the search) in one pass with the lanes'
    state in locals."""
    if tl.record:
        ends = []
        for a, label in zip(arrivals, labels):
            end = run_pieces(tl, row, pieces, a, label, step)
            for dim, secs, what in then:
                end = tl.block(row, secs, label=what, step=step, dim=dim)
            if send is not None:
                end = tl.add(row, COMM, send, after=end, label=send_label, step=step, part=HIDDEN)
            ends.append(end)
        return ends
    fc, fh = tl._free.get((row, COMPUTE), 0.0), tl._free.get((row, HOST), 0.0)
    fs = tl._free.get((row, COMM), 0.0)
    last = tl._ends.get(step, 0.0)
    sums = tl._sums.setdefault((step, row), {})
    blocks = [((COMM, dim), secs) for dim, secs in pieces.exposed + tuple(t[:2] for t in then) if secs > 0]
    waits = pieces.waits if pieces.waits > 1e-15 else 0.0
    ends = []
    for a in arrivals:                   # Timeline.add's arithmetic, task by task
        start = fc if fc > a else a
        fh = fh if fh > start else start             # the host lane issues (not counted)
        if pieces.issue > 0:
            fh += pieces.issue
            last = fh if fh > last else last
        e = start
        if pieces.compute > 0:
            e = start + pieces.compute
            sums[COMPUTE] = sums.get(COMPUTE, 0.0) + (e - start)
        for key, secs in blocks:
            e2 = e + secs
            sums[key] = sums.get(key, 0.0) + (e2 - e)
            e = e2
        if waits:
            e2 = e + waits
            sums[HOST] = sums.get(HOST, 0.0) + (e2 - e)
            e = e2
        if e > last:
            last = e
        fc = e
        if send is not None:                         # hidden: not counted
            fs = (fs if fs > e else e) + (send if send > 0 else 0.0)
            if send > 0 and fs > last:
                last = fs
            e = fs
        ends.append(e)
    tl._free[(row, COMPUTE)], tl._free[(row, HOST)] = fc, fh
    if send is not None:
        tl._free[(row, COMM)] = fs
    if last > tl._ends.get(step, 0.0):
        tl._ends[step] = last
    return ends


def run_pass(tl: Timeline, row: int, costs, sel, eta: float, label: str, step: int, sync: bool = False,
             after: float = 0.0, extra_host: float = 0.0) -> float:
    """One pass of a loop's blocks `sel` on `row` (pass_pieces, then run_pieces); its end."""
    return run_pieces(tl, row, pass_pieces(costs, sel, eta, sync, extra_host), after, label, step)


@dataclass
class LoopTime:
    """A denoising loop's time and where it goes on its critical row (`summarise`):
    total = warmup + compute + comm + host + bubble."""

    total: float
    steady_step: float           # one steady unit (a step, or a round of several)
    compute: float = 0.0
    comm_dims: dict[str, float] = field(default_factory=dict)   # exposed communication per dimension
    host: float = 0.0            # scheduler / loop overhead
    warmup: float = 0.0          # synchronous warm-up units, whole
    bubble: float = 0.0          # pipeline fill and drain, idle waits
    fixed: float = 0.0           # compute + host of every unit, warm-up included: what no rank order changes
    comm_bytes_per_step: float = 0.0
    timeline: Timeline | None = None
    rank_blocks: list[slice] | None = None   # blocks each pipeline stage holds (None: all)
    cuts: list[slice] | None = None          # the loop's partition of the blocks, if any
    notes: list[str] = field(default_factory=list)

    @property
    def comm(self) -> float:
        return sum(self.comm_dims.values())


def summarise(tl: Timeline, units: list[tuple[int, int]], critical: int = 0, warmup: set[int] = frozenset(),
              **extra) -> LoopTime:
    """The loop's LoopTime from a timeline that simulates each unit once (see the module
    doc). units: (step index on the timeline, repeats), in order; critical: the row whose
    parts are counted; warmup: the step indices of warm-up units. extra: LoopTime fields
    (comm_bytes_per_step, rank_blocks, cuts, notes)."""
    out = LoopTime(total=0.0, steady_step=0.0, **extra)
    prev = 0.0
    for step, count in units:
        end = tl._ends.get(step, prev)
        dur = end - prev
        prev = end
        out.total += count * dur
        out.steady_step = dur
        mine = tl._sums.get((step, critical), {})
        out.fixed += count * (mine.get(COMPUTE, 0.0) + mine.get(HOST, 0.0))
        if step in warmup:
            out.warmup += count * dur
            continue
        counted = 0.0
        for key, secs in mine.items():
            counted += secs
            if key == COMPUTE:
                out.compute += count * secs
            elif key == HOST:
                out.host += count * secs
            else:
                out.comm_dims[key[1]] = out.comm_dims.get(key[1], 0.0) + count * secs
        out.bubble += count * max(0.0, dur - counted)
    out.timeline = tl
    return out
