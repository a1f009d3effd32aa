"""Time to quality (issue 18 item 6): the structure of the measurement, never its speed."""

from __future__ import annotations

import json
import math

import pytest

from literate_tx.cli import main
from literate_tx.quality import _crossing, format_quality_report, time_to_quality

SMALL = dict(d_model=16, n_heads=2, d_ff=32, n_layers=1, batch_size=4, seq_len=16,
             eval_batches=1)


def test_curves_targets_and_ratio_have_the_promised_structure():
    pytest.importorskip("torch")
    r = time_to_quality(budget=0.6, evals=3, backends=["numpy-fast", "torch"],
                        overrides=SMALL, verbose=False)
    assert [c["backend"] for c in r["curves"]] == ["numpy-fast", "torch"]
    starts = [c["points"][0] for c in r["curves"]]
    # the same weights and data: the same loss before the first step, in every backend
    assert starts[0]["loss"] == pytest.approx(starts[1]["loss"], rel=1e-5)
    for c in r["curves"]:
        times = [p["time"] for p in c["points"]]
        steps = [p["step"] for p in c["points"]]
        assert times == sorted(times)
        assert steps == sorted(steps)
        assert times[0] == 0.0
        assert times[-1] >= 0.6
        assert c["steps"] == steps[-1] >= 1
        for p in c["points"]:
            assert p["bits_per_char"] == pytest.approx(p["loss"] / math.log(2))
    assert r["target"] == r["curves"][1]["points"][-1]["loss"]
    assert r["reach"]["torch"] is not None
    if r["reach"]["numpy-fast"] is None:
        assert r["ratio_numpy_fast_to_torch"] is None
    else:
        assert r["ratio_numpy_fast_to_torch"] == pytest.approx(
            r["reach"]["numpy-fast"] / r["reach"]["torch"])
    last = [c["points"][-1]["loss"] for c in r["curves"]]
    assert r["common_loss"] == max(last)  # a loss both reached
    assert r["ratio_at_common_loss"] is not None
    json.dumps(r)  # the results file is JSON
    assert "numpy-fast / torch" in format_quality_report(r)


def test_numpy_fast_with_two_threads_is_the_same_run():
    one = time_to_quality(budget=0.3, evals=1, backends=["numpy-fast"], overrides=SMALL,
                          verbose=False, threads=1)["curves"][0]
    two = time_to_quality(budget=0.3, evals=1, backends=["numpy-fast"], overrides=SMALL,
                          verbose=False, threads=2)["curves"][0]
    assert one["points"][0]["loss"] == pytest.approx(two["points"][0]["loss"], rel=1e-6)
    assert two["steps"] >= 1


def test_crossing_interpolates_between_evaluations():
    points = [{"time": 0.0, "loss": 4.0}, {"time": 2.0, "loss": 3.0},
              {"time": 4.0, "loss": 1.0}]
    assert _crossing(points, 2.0) == pytest.approx(3.0)
    assert _crossing(points, 3.0) == pytest.approx(2.0)
    assert _crossing(points, 0.5) is None
    assert _crossing(points, 5.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(budget=0), "budget=0 is not allowed"),
     (dict(backends=["torch-jit"]), "backends=['torch-jit'] is not allowed"),
     (dict(evals=0), "evals=0 is not allowed")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        time_to_quality(verbose=False, **kwargs)


def test_bench_command_writes_the_results(tmp_path, capsys):
    small = [f"--set={k}={v}" for k, v in SMALL.items()]
    code = main(["bench", "--time-to-quality", "--budget", "0.2", "--evals", "1",
                 "--quality-backends", "numpy-fast", *small, "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "quality_results.json").read_text())
    assert results["recipe"] == "tiny"
    assert results["model"]["d_model"] == 16  # --set overrides the recipe
    assert results["model"]["lr"] == 3e-3  # the rest is the recipe's
    assert (tmp_path / "quality_report.txt").read_text().startswith("time to quality")
    assert (tmp_path / "quality.png").read_bytes()[:4] == b"\x89PNG"
    assert "not measured" in capsys.readouterr().out
    assert main(["bench", "--time-to-quality", "--set", "oops", "--out", str(tmp_path)]) == 2
