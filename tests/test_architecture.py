"""The shape of the code: imports flow one way, and a strategy's traits live on the strategy.

- No import cycle among the planner's (or the executor's) modules, function-local imports
  included: a local import may defer a cost, never hide a cycle.
- The planner's layers: each module imports only from its own layer or below.
- Strategy names are not written out as hand-kept lists or per-key branches outside the
  strategy modules: no tuple/list/set of two or more strategy keys, no `.degree("key")`,
  `.group("key")`, `.groups("key")`, no `"key" in ...` (plan strings written on purpose,
  such as examples and defaults, are fine).
- The planner imports without torch.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

from planner.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent

# The planner's layers, bottom first; a module imports only from its layer or below.
LAYERS = [
    ("planner.errors", "planner.spec", "planner.timeline", "planner.memo", "planner.limits",
     "planner.outfiles", "planner.conventions"),
    ("planner.strategies",),
    ("planner.plan",),
    ("planner.hardware", "planner.zoo", "planner.profile_io"),
    ("planner.cluster", "planner.layout", "planner.legality", "planner.inputs"),
    ("planner.cost",),
    ("planner.ilp",),
    ("planner.search", "planner.validate", "planner.calibrate"),
    ("planner.textout", "planner.engines", "planner.report"),
    ("planner.plan_cli", "planner.validate_cli"),
]


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for p in (ROOT / package).rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def import_graph(package: str) -> nx.DiGraph:
    """Module -> module it imports (anywhere in the file, function bodies too; not under
    `if TYPE_CHECKING`). `from pkg import name` points at pkg.name when that is a module."""
    mods = _modules(package)
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            else:
                continue
            for t in targets:
                if t in mods and t != mod:
                    g.add_edge(mod, t)
    return g


def test_no_import_cycles():
    for package in ("planner", "executor"):
        cycles = [c for c in nx.strongly_connected_components(import_graph(package)) if len(c) > 1]
        assert not cycles, f"import cycles in {package}: {cycles}"


def _layer(mod: str) -> int:
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (mod == n or mod.startswith(n + ".")) and (best is None or len(n) > len(best[1])):
                best = (i, n)
    assert best is not None, f"{mod} has no layer in tests/test_architecture.py LAYERS"
    return best[0]


def test_planner_imports_flow_down_the_layers():
    g = import_graph("planner")
    up = [(a, b) for a, b in g.edges if a != "planner" and b != "planner" and _layer(b) > _layer(a)]
    assert not up, f"imports that go up a layer: {up}"


def _strategy_modules(path: Path) -> bool:
    # the strategies themselves, and engine adapters (an engine maps strategy keys to its flags)
    return "strategies" in path.parts or "engines" in path.parts


def key_literals(path: Path) -> list[str]:
    """Hand-kept strategy lists and per-key branches in one file (see the module doc)."""
    keys = set(STRATEGIES) - {"serial"}
    tree = ast.parse(path.read_text())
    out = []

    def is_key(n) -> bool:
        return isinstance(n, ast.Constant) and n.value in keys

    for n in ast.walk(tree):
        if isinstance(n, (ast.Tuple, ast.List, ast.Set)) and sum(map(is_key, n.elts)) >= 2:
            out.append(f"{path.name}:{n.lineno}: list of strategy keys")
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr in ("degree", "group", "groups") and n.args and is_key(n.args[0])):
            out.append(f"{path.name}:{n.lineno}: .{n.func.attr}({n.args[0].value!r})")
        elif isinstance(n, ast.Compare) and is_key(n.left) and any(isinstance(o, (ast.In, ast.NotIn)) for o in n.ops):
            out.append(f"{path.name}:{n.lineno}: {n.left.value!r} in ...")
    return out


def test_strategy_keys_are_not_written_out_elsewhere():
    found = []
    for package in ("planner", "executor", "profiler"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if not _strategy_modules(path):
                found += key_literals(path)
    found += key_literals(ROOT / "cli.py")
    assert not found, "strategy traits belong on the strategy (planner/strategies):\n" + "\n".join(found)


def test_key_literal_check_catches_a_hand_kept_list(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('KEYS = ("ulysses", "ring")\nif plan.degree("tp") > 1:\n    pass\nok = "dp" in plan.keys\n')
    assert len(key_literals(f)) == 3


def test_per_object_caches_do_not_keep_their_objects_alive():
    import gc
    import weakref

    from planner import zoo
    from planner.cost.compute import op_table
    from planner.memo import _CACHES
    zoo._build.cache_clear()
    m = zoo.build("pixart-alpha", 512, 512)
    op_table(m)
    ref, key = weakref.ref(m), id(m)
    assert key in _CACHES
    zoo._build.cache_clear()
    del m
    gc.collect()
    assert ref() is None and key not in _CACHES


def test_planner_imports_without_torch():
    code = ("import sys, planner.search, planner.plan_cli, planner.validate, planner.calibrate; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


NEW_PLANNER_STRATEGY = '''"""echo: a layer strategy for tests: every rank runs the whole model (nothing is split)."""
from .base import Strategy


class Echo(Strategy):
    key = "echo"
    plan_rank = 99
    layout_rank = 99
    combines_with = "cfg dp"


STRATEGY = Echo()
'''
NEW_EXECUTOR_RUNNER = '''"""echo: every rank runs the whole model (planner/strategies/echo.py)."""
from .runner import Runner

RUNNER = Runner("echo")
'''
CHECK = '''
from planner import zoo
from planner.cluster import build_cluster
from planner.cost.predict import predict
from planner.engines import ENGINES
from planner.hardware import default_profile
from planner.layout import layout_for
from planner.legality import plan_errors
from planner.plan import parse_plan
from planner.spec import Scenario
import executor.strategies as ex
plan = parse_plan("echo=2 cfg=2")
assert str(plan) == "cfg=2 echo=2" and plan.gpus == 4, plan
assert layout_for(plan).order == ("cfg", "echo")
m = zoo.build("pixart-alpha", 512, 512)
sc = Scenario(model="pixart-alpha", height=512, width=512, steps=20)
assert plan_errors(plan, m, sc, 4) == []
assert predict(plan, m, sc, build_cluster("l40", 4), default_profile()).latency_s > 0
assert not ENGINES["xdit"].can_run(plan, m, sc) and ENGINES["paradiff"].can_run(plan, m, sc)
assert "echo" in ex.RUNNERS
print("ok")
'''


def test_a_new_layer_strategy_is_two_modules(tmp_path):
    """A strategy is its planner module and its executor module: with only those two new
    files (and no other edit), plans parse, lay out, predict, and engines decide on it."""
    import shutil
    for d in ("planner", "executor", "hw_profiles"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "planner" / "strategies" / "echo.py").write_text(NEW_PLANNER_STRATEGY)
    (tmp_path / "executor" / "strategies" / "echo.py").write_text(NEW_EXECUTOR_RUNNER)
    r = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
