"""The regime test of offline-to-online RL (Li, Ni, Sun, Bacon) on hand-made returns: each
boundary of the margin δ and of the level α, the Welch test against scipy's, the intervals, and
the family each regime recommends. `mprl regime` on a real checkpoint is in test_subroutine.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from mprl.regime import diagnose, estimate, resolve_family, welch


def test_estimate_is_a_student_t_interval():
    e = estimate([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} · s / √n with s = 1
    assert (e.mean, e.std, e.n) == (2.0, 1.0, 3)
    assert (e.low, e.high) == pytest.approx((2 - half, 2 + half))
    assert estimate([5.0]).low == estimate([5.0]).high == 5.0  # one value: no spread to estimate


def test_welch_matches_scipy_one_sided_with_a_margin():
    a, b, margin = [10.0, 12.0, 11.0, 14.0, 9.0], [8.0, 9.5, 7.0, 10.0], 0.5
    w = welch(a, b, margin)
    ref = stats.ttest_ind([x - margin for x in a], b, equal_var=False, alternative="greater")
    assert w.t_superior == pytest.approx(ref.statistic) and w.p_superior == pytest.approx(ref.pvalue)
    ref_inf = stats.ttest_ind([x + margin for x in a], b, equal_var=False, alternative="less")
    assert w.p_inferior == pytest.approx(ref_inf.pvalue)


@pytest.mark.parametrize("pi0, expected", [
    ([56.0, 56.0], "Superior"),    # 6 above D: beyond δ = 0.05 × 100 = 5
    ([54.0, 54.0], "Comparable"),  # 4 above: within δ, however certain
    ([50.0, 50.0], "Comparable"),
    ([46.0, 46.0], "Comparable"),
    ([44.0, 44.0], "Inferior"),
])
def test_the_margin_sets_the_boundaries(pi0, expected):
    d = diagnose(pi0, [50.0, 50.0], refs=(0.0, 100.0))
    assert d.margin_return == pytest.approx(5.0) and d.scale_source == "reference scores"
    assert d.regime == expected


def test_the_level_sets_the_boundary():
    """The same returns are Superior at a level just above their p-value and Comparable just below."""
    pi0, data = [60.0, 70.0, 65.0, 62.0], [50.0, 58.0, 49.0, 55.0]
    p = diagnose(pi0, data, refs=(0.0, 100.0)).test.p_superior
    assert 0.001 < p < 0.2
    assert diagnose(pi0, data, refs=(0.0, 100.0), alpha=p * 1.01).regime == "Superior"
    assert diagnose(pi0, data, refs=(0.0, 100.0), alpha=p * 0.99).regime == "Comparable"


def test_without_reference_scores_the_dataset_range_scales_the_margin():
    d = diagnose([30.0, 31.0], [0.0, 20.0, 10.0])
    assert d.scale == 20.0 and d.margin_return == pytest.approx(1.0) and d.scale_source == "dataset return range"
    assert d.normalized == {"pi0": None, "data": None}
    n = diagnose([30.0, 31.0], [0.0, 20.0], refs=(0.0, 200.0)).normalized
    assert n["pi0"] == pytest.approx(15.25) and n["data"] == pytest.approx(5.0)


def test_each_regime_recommends_its_family():
    sup = diagnose([90.0, 91.0, 92.0], [10.0, 11.0, 12.0], refs=(0.0, 100.0))
    inf = diagnose([10.0, 11.0, 12.0], [90.0, 91.0, 92.0], refs=(0.0, 100.0))
    comp = diagnose([50.0, 51.0], [50.0, 51.0], refs=(0.0, 100.0))
    assert (sup.regime, sup.family) == ("Superior", "pi0_centric")
    assert (inf.regime, inf.family) == ("Inferior", "d_centric")
    assert (comp.regime, comp.family) == ("Comparable", "d_centric")
    family, why = resolve_family("auto", sup)
    assert family == "pi0_centric" and "Superior" in why
    assert resolve_family("d_centric", sup)[0] == "d_centric"  # written in the phase: as written
    assert "Superior:" in sup.summary() and "regime : Superior" in sup.report()


def test_mprl_regime_refuses_a_bad_level_in_one_line(capsys):
    from mprl.cli import main

    assert main(["regime", "ck-missing", "--dataset", "mprl/hopper/medium-v0", "--alpha", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mprl: error: --margin must be ≥ 0 and --alpha in (0, 1)") and "Traceback" not in err
