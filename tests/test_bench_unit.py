"""How `make bench` holds fityard's figures against Ray's and prints them,
on given figures (the suite's smoke run of the bench, tests/test_bench.py,
runs no peer)."""

from __future__ import annotations

import pytest

from bench.__main__ import against_ray, table
from bench.measure import Figure


def _figure(benchmark: str, system: str, value: float, repeats=None) -> Figure:
    return Figure(benchmark, system, value, "ms", 1.0, "base", extra={"repeats": repeats or []})


def test_every_row_both_have_is_held_against_ray_with_its_goal():
    figures = [
        _figure("dispatch latency p50", "fityard (defaults)", 8.0, [7.0, 8.0, 9.0]),
        _figure("dispatch latency p50", "Ray", 10.0, [10.0]),
        _figure("dispatch latency p95", "fityard (defaults)", 12.0),
        _figure("dispatch latency p95", "Ray", 11.0),
        _figure("concurrency: 4 fits at once (makespan)", "fityard (defaults)", 3.0),
        _figure("concurrency: 4 fits at once (makespan)", "Ray", 2.0),
        _figure("scale: 30 tiny fits at once", "fityard (defaults)", 5.0),
        _figure("scale: 30 tiny fits at once", "Ray", 9.0),
        _figure("smallest job, one at a time: submit -> succeeded p50", "fityard (defaults)", 9.0),
        _figure("smallest job, one at a time: submit -> succeeded p50", "Ray", 10.0),
        _figure("smallest job (300 at once): throughput", "fityard (defaults)", 80.0),
        _figure("smallest job (300 at once): CPU per job outside the fit", "fityard (defaults)", 9),
        _figure("smallest job (300 at once): throughput", "Ray", 100.0),
        # fityard with other settings, and a row Ray does not have: not compared
        _figure("dispatch latency p50", "fityard (8 trainers)", 1.0),
        _figure("transfer up", "fityard (defaults)", 1.0),
    ]
    rows = {f.benchmark: f for f in against_ray(figures)}
    assert set(rows) == {
        "dispatch latency p50: fityard against Ray",
        "dispatch latency p95: fityard against Ray",
        "concurrency: 4 fits at once (makespan): fityard against Ray",
        "scale: 30 tiny fits at once: fityard against Ray",
        "smallest job, one at a time: submit -> succeeded p50: fityard against Ray",
        "smallest job (300 at once): throughput: fityard against Ray",
    }
    p50 = rows["dispatch latency p50: fityard against Ray"]
    assert (p50.value, p50.baseline, p50.ratio) == (8.0, 10.0, pytest.approx(0.8))
    assert p50.met is True and p50.goal == "<= 0.80"  # 0.80: just met
    assert p50.extra == {"fityard": [7.0, 8.0, 9.0], "ray": [10.0]}
    assert rows["dispatch latency p95: fityard against Ray"].met is False  # 12 > 11
    assert rows["concurrency: 4 fits at once (makespan): fityard against Ray"].met is False
    assert rows["scale: 30 tiny fits at once: fityard against Ray"].met is False  # 5 < 9 jobs/s
    one = rows["smallest job, one at a time: submit -> succeeded p50: fityard against Ray"]
    assert one.met is True and one.goal == "<= 1.00"  # 9 ms against Ray's 10
    burst = rows["smallest job (300 at once): throughput: fityard against Ray"]
    assert (burst.value, burst.baseline, burst.met) == (80.0, 100.0, False)  # not the CPU row
    assert all(f.baseline_name == "Ray, same run" for f in rows.values())


def test_no_ray_figures_no_rows_against_ray():
    assert against_ray([_figure("dispatch latency p50", "fityard (defaults)", 8.0)]) == []


def test_the_table_shows_each_figure_with_its_baseline_ratio_and_verdict():
    met = Figure("b", "fityard", 2.0, "s", 4.0, "bare fit", "<= 1.05", met=True)
    missed = Figure("c", "fityard", 3.0, "s", 1.0, "bare fit", "<= 1.05", met=False)
    lines = table([met, missed]).splitlines()
    assert lines[0].split("|")[1].strip() == "benchmark" and set(lines[1]) <= {"|", "-"}
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0] == ["b", "fityard", "2 s", "4 s (bare fit)", "0.50", "<= 1.05", "yes"]
    assert cells[1][4:] == ["3.00", "<= 1.05", "NO"]
