"""The ranked plans of the benchmark scenarios (bench/search_time.py, all but the 1,024-GPU
one), pinned in tests/data/golden_ranking.json: a refactor must not change a ranking or a
prediction. A change to the cost model that is meant to change them regenerates the file,
and its commit says why:

    python -m tests.golden            # rewrite tests/data/golden_ranking.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden_ranking.json"


def scenarios():
    sys.path.insert(0, str(ROOT))
    from bench.search_time import SCENARIOS
    return [s for s in SCENARIOS if s[3].get("gpus", 0) <= 64]


def ranking(index: int) -> dict:
    """{"recommended": plan, "ranked": [[plan, latency_s, memory_bytes, fits, approx_steps], ...]}"""
    from bench.search_time import inputs
    from planner.hardware import default_profile
    from planner.search import search
    label, _, scen, clus, opts = scenarios()[index]
    model, sc, cluster = inputs(scen, clus)
    res = search(model, sc, cluster, default_profile(), **opts)
    return {"label": label, "recommended": str(res.recommended.plan) if res.recommended else None,
            "ranked": [[str(p.plan), p.latency_s, p.memory_bytes, p.fits, p.approx_steps] for p in res.ranked]}


def main() -> int:
    GOLDEN.write_text(json.dumps([ranking(i) for i in range(len(scenarios()))], indent=0) + "\n")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
