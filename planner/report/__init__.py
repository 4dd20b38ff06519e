"""Interactive, self-contained HTML reports (Plotly) of what the commands compute.

    plan      planner/report/plan.py      ranked plans, Pareto front, timeline, cluster graph
    run       planner/report/run.py       measured against predicted, per-step time, fidelity
    validate  planner/report/validate.py  predicted against published latencies, error by group
    profile   planner/report/profile.py   measured efficiency and bandwidth against their fits

Every report is one HTML file with plotly.js inlined, so it opens offline (a file sent by
mail or archived by CI still works years later). Files are written atomically
(planner/report/html.py): a failure never leaves a half-written report behind.
`python cli.py report KIND INPUT.json --out FILE.html` rebuilds any of them from the
JSON the command printed (planner/report/cli.py).
"""
