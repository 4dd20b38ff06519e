"""Solving a pulp model with a time limit, and saying how good the answer is.

Every integer program of the planner goes through `solve`. CBC (pulp's bundled
PULP_CBC_CMD) runs single-threaded with a wall-clock limit; when the limit stops it,
pulp still loads the best integer solution found, and CBC's log says the best bound, so
we return the solution with its relative gap (Alpa and nnScaler run the same solver with
timeLimit=600; our limits are seconds because the planner runs interactively).
HiGHS is used instead when pulp can reach it (the `highspy` package), since it is
usually faster on small models; its gap comes from the solver object.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass

import pulp

DEFAULT_TIME_LIMIT = 10.0


class SolveError(RuntimeError):
    """The model has no solution (infeasible=True) or the solver found none in time."""

    def __init__(self, message: str, infeasible: bool):
        super().__init__(message)
        self.infeasible = infeasible


@dataclass(frozen=True)
class SolveInfo:
    """What a solve returned: the objective, the proven bound and their relative gap.
    optimal=True: proven optimal (gap within the solver's tolerance)."""

    status: str          # "optimal" | "time limit" (feasible, not proven) | "no solution in time"
    objective: float
    bound: float
    gap: float           # (objective - bound) / |objective|; 0 when proven
    seconds: float
    solver: str

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    def to_dict(self) -> dict:
        def num(x, digits=None):
            return (round(x, digits) if digits else x) if math.isfinite(x) else None   # JSON has no NaN
        return {"status": self.status, "objective": num(self.objective), "bound": num(self.bound),
                "gap": num(self.gap, 6), "seconds": round(self.seconds, 4), "solver": self.solver}


def _highs():
    """pulp's HiGHS interface if highspy is installed, else None."""
    try:
        s = pulp.HiGHS(msg=False)
        return s if s.available() else None
    except Exception:   # pragma: no cover - depends on the installed extras
        return None


_LOG_NUM = r"([-+0-9.eE]+|inf)"


def _cbc_bound(log: str, objective: float) -> float:
    """Best bound from CBC's log: 'Lower bound:' after a time limit (the gap line is
    relative to it); otherwise the solve was complete and the bound is the objective."""
    m = re.search(r"Lower bound:\s*" + _LOG_NUM, log)
    if m:
        try:
            return float(m.group(1))
        except ValueError:
            pass
    return objective


def solve(prob: pulp.LpProblem, time_limit: float = DEFAULT_TIME_LIMIT, what: str = "model",
          gap_rel: float | None = None, warm_start: bool = False) -> SolveInfo:
    """Solve `prob` (a minimisation) within `time_limit` seconds.

    warm_start: pass the variables' initial values (setInitialValue) to the solver.
    Returns SolveInfo; the variables hold the best solution found. Raises SolveError
    when the model is infeasible or no integer solution was found before the limit.
    """
    t0 = time.perf_counter()
    highs = _highs() if os.environ.get("PARADIFF_ILP_SOLVER", "") != "cbc" else None
    if highs is not None:   # pragma: no cover - only where highspy is installed
        highs.timeLimit = time_limit
        if gap_rel is not None:
            highs.gapRel = gap_rel
        prob.solve(highs)
        return _finish(prob, t0, what, "highs", None)
    fd, log_path = tempfile.mkstemp(prefix="paradiff-cbc-", suffix=".log")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # pulp 3.x warns that PULP_CBC_CMD (the bundled CBC) goes away in pulp 4; the
            # project pins pulp < 4 (pyproject.toml) because the bundled binary is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            cmd = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(time_limit, 0.05), threads=1,
                                    logPath=log_path, gapRel=gap_rel, warmStart=warm_start)
        try:
            prob.solve(cmd)
        except pulp.PulpSolverError:
            # CBC occasionally exits abnormally when its time limit strikes mid-heuristic
            # (seen with warm starts): one retry, then give up like a solver that found
            # nothing in time (callers fall back to their exact DPs)
            try:
                prob.solve(cmd)
            except pulp.PulpSolverError:
                raise SolveError(f"{what}: CBC failed twice (exit status != 0)", infeasible=False) from None
        with open(log_path, errors="replace") as f:
            log = f.read()
    finally:
        os.unlink(log_path)
    return _finish(prob, t0, what, "cbc", log)


def _finish(prob, t0, what, solver, log) -> SolveInfo:
    seconds = time.perf_counter() - t0
    # sol_status: 1 optimal, 2 integer feasible but stopped (time limit), 0 none, -1/-2 none
    sol = prob.sol_status
    if prob.status == pulp.LpStatusInfeasible or sol in (pulp.LpSolutionInfeasible,
                                                          pulp.LpSolutionUnbounded):
        raise SolveError(f"{what}: no solution satisfies the constraints", infeasible=True)
    if sol not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise SolveError(f"{what}: the solver found no solution within its time limit "
                         f"({seconds:.1f} s); raise the limit", infeasible=False)
    obj = float(pulp.value(prob.objective) or 0.0)
    if sol == pulp.LpSolutionOptimal:
        return SolveInfo("optimal", obj, obj, 0.0, seconds, solver)
    bound = _cbc_bound(log, obj) if log is not None else obj
    gap = (obj - bound) / abs(obj) if obj else 0.0
    return SolveInfo("time limit", obj, bound, max(gap, 0.0), seconds, solver)


def new_var(prob: pulp.LpProblem, name: str, lowBound=None, upBound=None, cat: str = "Continuous"):
    """A variable of `prob` (pulp >= 3.3 attaches variables to their model and deprecates
    constructing LpVariable directly; older pulp has only the constructor)."""
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound, upBound, cat)
    return pulp.LpVariable(name, lowBound, upBound, cat)   # pragma: no cover - pulp < 3.3


def value(v) -> float:
    """A variable's value in the solution (0 for unset variables)."""
    x = v.value() if hasattr(v, "value") else v
    return float(x) if x is not None else 0.0


def is_one(v) -> bool:
    return value(v) > 0.5
