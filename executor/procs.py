"""Local ranks for the executor and the profiler: started, watched, stopped, and never left
behind.

    start(target, nproc, args)   nproc processes, each running target(rank, world, *args)
                                 with torch.distributed's environment set and a store the
                                 launcher hosts (init_group joins it); returns Ranks
    Ranks.wait()                 rank 0's return value, or RankFailed naming the rank that
                                 failed first and how; stops every rank on the way out
    init_group(backend, t)       in a rank: the default process group from that store
    die_with_parent()            in a rank someone else started (torchrun): exit with it
    in_torchrun()                this process is one rank of a torchrun job

Ranks die with their launcher. Each holds the read end of a pipe whose only write end is
the launcher's, and a thread blocks on it: when the launcher ends in any way (SIGKILL, the
OOM killer), the kernel closes the write end and the rank kills itself. Under torchrun the
parent is the agent: a parent-death signal (Linux prctl) and a watch on the parent pid do
the same. The forkserver and resource tracker of multiprocessing end by themselves once the
ranks are gone (their pipes close).

Failures. A rank that raises writes "<time> rank R: <error>" and its traceback to its error
file, and exits 1. The launcher watches every rank; at the first failure it gives the
others GRACE_S to fail on their own (they usually lose a peer at once), then stops the rest
(SIGTERM, and SIGKILL after STOP_S). The rank that failed first is the cause, told apart
from the consequences: a peer error ("Connection reset by peer", a timeout waiting for a
peer) follows another rank's death; a rank killed by a signal, exiting without an error, or
raising anything else is a cause; a rank found stopped (SIGSTOP) while the others timed out
is the cause of their timeouts. Ctrl-C (SIGINT), SIGTERM and SIGHUP to the launcher stop
the ranks the same way. The whole run ends within GRACE_S + STOP_S of a fault (a stopped
rank: of the collective timeout). PARADIFF_KEEP_LOGS=1 keeps each run's directory (the
ranks' output, error files with tracebacks) for developers.
"""
from __future__ import annotations

import ctypes
import datetime
import glob
import multiprocessing
import multiprocessing.connection
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field

GRACE_S = 2.0          # after the first failure, for the others to fail (and say why) on their own
STOP_S = 3.0           # after SIGTERM, before SIGKILL
POLL_S = 0.1
# what a rank says when a peer died or stopped: a consequence, not a cause
PEER_ERROR = re.compile(r"connection (reset|closed|refused)|broken pipe|closed by peer|peer|timed? ?out|timeout"
                        r"|DistNetworkError|ECONNRESET|EPIPE|end of file|socket", re.I)


class RankFailed(RuntimeError):
    """A rank raised or died; the message is one line naming the rank and its error."""


class LauncherSignalled(RankFailed):
    """The launcher got SIGTERM or SIGHUP; the ranks were stopped."""

    def __init__(self, signum: int):
        super().__init__(f"the launcher got {signal.Signals(signum).name}; the ranks were stopped")
        self.signum = signum


def in_torchrun() -> bool:
    env = os.environ
    return "TORCHELASTIC_RUN_ID" in env or all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


# ---------------------------------------------------------------- inside a rank
def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_pipe(conn) -> None:
    """Block on the launcher's pipe; its end (EOF) means the launcher is gone."""
    def watch():
        try:
            while True:
                conn.recv_bytes()
        except (EOFError, OSError):
            _kill_self()
    threading.Thread(target=watch, name="paradiff-launcher-watch", daemon=True).start()


def die_with_parent(poll_s: float = 1.0) -> None:
    """For a rank started by someone else (torchrun's agent): end when the parent does.
    Linux: a parent-death signal (prctl PR_SET_PDEATHSIG); everywhere: a thread that sees
    the parent pid change (the orphan is re-parented). Idempotent: `run` arms it as it
    starts (a rank loads its model for seconds before it joins the group) and again as
    it launches."""
    if any(t.name == "paradiff-parent-watch" for t in threading.enumerate()):
        return
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)    # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:        # died before the signal was armed
        _kill_self()

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                _kill_self()
    threading.Thread(target=watch, name="paradiff-parent-watch", daemon=True).start()


def init_group(backend: str, timeout_s: float):
    """The default process group of this rank, through the launcher's store (no port to
    pick and race for) or, under torchrun, its environment."""
    import torch.distributed as dist
    timeout = datetime.timedelta(seconds=timeout_s)
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if os.environ.get("PARADIFF_STORE") == "launcher":
        # the join waits for every rank; 8 ranks on a loaded 2-core machine have taken over
        # a minute to start, so the store waits at least 5 minutes
        store = dist.TCPStore(host, port, None, False, datetime.timedelta(seconds=max(300.0, timeout_s)))
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    else:
        dist.init_process_group(backend, timeout=timeout)
    return dist


def _error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__


def write_error(run_dir: str, rank: int, e: BaseException) -> None:
    """The error file of a rank: written whole, then renamed (the launcher may kill this
    rank mid-write, another rank having failed first, and must never read half a file)."""
    path = os.path.join(run_dir, f"rank{rank}.err")
    with open(path + ".tmp", "w") as fh:
        fh.write(f"{time.time():.6f} rank {rank}: {_error_line(e)}\n{traceback.format_exc()}")
    os.replace(path + ".tmp", path)


def _rank_main(target, rank: int, world: int, env: dict, alive, run_dir: str, args: tuple) -> None:
    """The entry point of every rank (a multiprocessing target, so picklable)."""
    try:
        log = os.open(os.path.join(run_dir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:         # the launcher stopped (and cleaned up) before this rank got going
        os._exit(1)
    os.dup2(log, 1)         # the user's terminal gets the launcher's one line, not ranks' chatter
    os.dup2(log, 2)
    code = 1
    try:
        _watch_pipe(alive)
        os.environ.update(env | {"RANK": str(rank), "LOCAL_RANK": str(rank)})
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out = target(rank, world, *args)
        if rank == 0:
            path = os.path.join(run_dir, "result.pkl")
            with open(path + ".tmp", "wb") as fh:
                pickle.dump(out, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(path + ".tmp", path)
        code = 0
    except BaseException as e:
        write_error(run_dir, rank, e)
    finally:
        # leave without interpreter teardown: gloo's transport threads can be torn down by
        # C++ static destructors at exit, which sometimes aborts (SIGABRT) a finished rank
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# ---------------------------------------------------------------- the launcher's side
@dataclass
class Exit:
    rank: int
    code: int            # negative: killed by that signal
    at: float            # when the launcher saw it (time.time())


@dataclass
class Ranks:
    procs: list
    run_dir: str
    alive_w: object
    store: object
    started: float = field(default_factory=time.time)
    exits: dict = field(default_factory=dict)      # rank -> Exit
    stopping_at: float | None = None
    messages: object = None                         # start(messages=True): the ranks' queue

    # ---- watching
    def _collect(self, timeout: float) -> None:
        live = {p.sentinel: r for r, p in enumerate(self.procs) if r not in self.exits}
        if not live:
            return
        for s in multiprocessing.connection.wait(list(live), timeout):
            r = live[s]
            self.procs[r].join()
            self.exits[r] = Exit(r, self.procs[r].exitcode, time.time())

    def _failed(self) -> list[Exit]:
        return [x for x in self.exits.values() if x.code != 0]

    def wait(self, deadline_s: float | None = None, on_poll=None):
        """Rank 0's return value once every rank has finished; RankFailed (one line) if
        one fails, KeyboardInterrupt on Ctrl-C, LauncherSignalled on SIGTERM/SIGHUP, each
        with every rank stopped. `on_poll()` runs between polls (progress messages)."""
        end = None if deadline_s is None else time.time() + deadline_s
        try:
            with _signals_raise():
                while len(self.exits) < len(self.procs):
                    self._collect(POLL_S)
                    if on_poll:
                        on_poll()
                    if self._failed():
                        raise RankFailed(self._diagnose())
                    if end is not None and time.time() > end:
                        self.stop()
                        raise RankFailed(f"the ranks did not finish within {deadline_s:.0f} s; they were stopped")
            return self._result()
        finally:
            self.stop()
            self._close()

    def _diagnose(self) -> str:
        """Let the others fail on their own for a moment, find stopped ranks, stop the rest;
        then the one line naming the first failure (module doc)."""
        until = time.time() + GRACE_S
        while len(self.exits) < len(self.procs) and time.time() < until:
            self._collect(POLL_S)
        stopped = [r for r, p in enumerate(self.procs) if r not in self.exits and _state(p.pid) == "T"]
        self.stop()
        return diagnose(read_errors(self.run_dir), list(self.exits.values()), stopped, self.stopping_at)

    def _result(self):
        path = os.path.join(self.run_dir, "result.pkl")
        with open(path, "rb") as fh:
            return pickle.load(fh)

    # ---- stopping
    def stop(self) -> None:
        """SIGTERM (and SIGCONT, so that a stopped rank handles it) to every live rank,
        SIGKILL to those still alive STOP_S later; waits for them."""
        live = [p for r, p in enumerate(self.procs) if r not in self.exits and p.is_alive()]
        if not live:
            return
        if self.stopping_at is None:
            self.stopping_at = time.time()
        for p in live:
            for sig in (signal.SIGTERM, signal.SIGCONT):
                _send(p.pid, sig)
        until = time.time() + STOP_S
        while any(p.is_alive() for p in live) and time.time() < until:
            multiprocessing.connection.wait([p.sentinel for p in live if p.is_alive()], POLL_S)
        for p in live:
            if p.is_alive():
                _send(p.pid, signal.SIGKILL)
        for p in live:
            p.join(STOP_S)
        for r, p in enumerate(self.procs):
            if r not in self.exits and p.exitcode is not None:
                self.exits[r] = Exit(r, p.exitcode, time.time())

    def _close(self) -> None:
        try:
            self.alive_w.close()        # the ranks' watch ends them if anything is left
        except OSError:
            pass
        if not os.environ.get("PARADIFF_KEEP_LOGS"):
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _state(pid: int) -> str:
    """The process state letter of /proc/<pid>/stat (T: stopped), or '' if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


class _signals_raise:
    """While ranks run: SIGTERM and SIGHUP to the launcher raise LauncherSignalled (Python
    would die without stopping them); SIGINT raises KeyboardInterrupt as always."""

    def __enter__(self):
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self.old[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise LauncherSignalled(signum)

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False


def read_errors(run_dir: str) -> dict[int, tuple[float, str]]:
    """rank -> (time, one line) of every whole error file (a half-written one is skipped)."""
    out = {}
    for path in glob.glob(os.path.join(run_dir, "rank*.err")):
        with open(path) as fh:
            first = fh.readline().rstrip("\n")
        stamp, _, line = first.partition(" ")
        m = re.match(r"rank (\d+): ", line)
        try:
            out[int(m[1])] = (float(stamp), line)
        except (TypeError, ValueError):
            continue
    return out


def _how(x: Exit) -> str:
    if x.code < 0:
        try:
            return f"killed by signal {signal.Signals(-x.code).name}"
        except ValueError:
            return f"killed by signal {-x.code}"
    return f"exited with code {x.code} without an error"


def diagnose(errors: dict[int, tuple[float, str]], exits: list[Exit], stopped: list[int],
             stopping_at: float | None = None) -> str:
    """One line: the first failure (the cause) and, briefly, what it did to the others.
    errors: rank -> (time, "rank R: Error: ..."); exits: what the launcher saw; stopped:
    ranks found stopped; stopping_at: when the launcher began stopping ranks (exits after
    it are its own doing)."""
    own = [x for x in exits if x.code != 0 and (stopping_at is None or x.at < stopping_at)]
    causes = []     # (time, rank, text)
    for x in own:
        if x.rank in errors:
            t, line = errors[x.rank]
            if not PEER_ERROR.search(line.partition(": ")[2]):
                causes.append((t, x.rank, line))
        else:
            causes.append((x.at, x.rank, f"rank {x.rank}: {_how(x)}"))
    peers = sorted((t, r, line) for r, (t, line) in errors.items() if not any(r == c[1] for c in causes))
    if not causes and stopped:
        causes = [(0.0, r, f"rank {r}: stopped (SIGSTOP or a debugger), so the others waited for it until "
                            f"the collective timeout") for r in stopped]
    if not causes and peers:
        causes, peers = peers[:1], peers[1:]
    if not causes:
        return "a rank failed without a message"
    _, rank, text = min(causes)
    after = [line for _, r, line in peers if r != rank][:2]
    if after:
        text += " (then " + "; ".join(after) + ")"
    return text if len(text) <= 400 else text[:397] + "..."


def _context(method: str, preload: tuple[str, ...]):
    if method == "forkserver":
        # ranks are forked from a forkserver that has imported torch (fast starts, like fork),
        # never from this process: forking a process whose torch and gloo threads may hold
        # locks can leave a child hung before it joins the group
        multiprocessing.set_forkserver_preload(list(dict.fromkeys(("torch", "torch.distributed", __name__) + preload)))
    return multiprocessing.get_context(method)


def start(target, nproc: int, args: tuple = (), *, method: str = "forkserver", preload: tuple[str, ...] = (),
          env: dict | None = None, store_timeout_s: float = 300.0, messages: bool = False) -> Ranks:
    """Start nproc ranks of target(rank, world, *args) (module doc). method: forkserver
    (CPU ranks) or spawn (CUDA ranks: a CUDA context must not be forked). messages: a
    queue the ranks can put() progress on, passed as target's last argument and read from
    Ranks.messages."""
    import torch.distributed as dist
    ctx = _context(method, preload)
    run_dir = tempfile.mkdtemp(prefix="paradiff-ranks-")
    store = dist.TCPStore("127.0.0.1", 0, None, True, datetime.timedelta(seconds=store_timeout_s),
                          wait_for_workers=False)
    base = {"WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(store.port), "PARADIFF_STORE": "launcher", "OMP_NUM_THREADS": "1"}
    if "GLOO_SOCKET_IFNAME" not in os.environ and os.path.exists("/sys/class/net/lo"):
        base["GLOO_SOCKET_IFNAME"] = "lo"      # stay on loopback whatever the hostname resolves to
    alive_r, alive_w = ctx.Pipe(duplex=False)
    ranks = Ranks([], run_dir, alive_w, store)
    if messages:
        ranks.messages = ctx.SimpleQueue()
        args = tuple(args) + (ranks.messages,)
    try:
        with _signals_raise():
            for r in range(nproc):
                p = ctx.Process(target=_rank_main, args=(target, r, nproc, base | (env or {}), alive_r, run_dir, args),
                                name=f"paradiff-rank{r}", daemon=False)
                p.start()
                ranks.procs.append(p)
    except BaseException:
        ranks.stop()
        ranks._close()
        raise
    finally:
        alive_r.close()
    return ranks
