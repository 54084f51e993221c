"""Statistics for every comparison the project reports (docs/results.md, bench/).

One rule for every table. A paired comparison (two rows trained with the same seeds: the
same initialisation of their shared parameters and the same data order) is summarised by
the per-seed differences d_s = a_s − b_s:

* n, the mean d̄ and the sample standard deviation sd (ddof = 1);
* the 95 % confidence interval of the mean from the paired t distribution, and the
  two-sided p of the paired t-test;
* a percentile-bootstrap interval (`scipy.stats.bootstrap`, seeded) as a cross-check;
* one verdict, with Δ the minimum effect of interest (an explicit argument):

  - ``ruled out``: the whole CI lies inside (−Δ, +Δ) (an equivalence test: no effect as
    large as Δ, in either direction);
  - ``supported``: the whole CI lies above 0 (a ahead of b);
  - ``supported, other way``: the whole CI lies below 0 (b ahead of a);
  - ``inconclusive``: otherwise; `seeds_for_80_power` then says how many seeds a paired
    t-test would need for 80 % power at the observed effect d̄ / sd.

  A comparison with fewer than `min_n` seeds (default `MIN_SEEDS_FOR_CLAIM`) keeps its
  numbers but carries no claim (``no claim``); under 2 seeds nothing can be estimated
  (``n/a``).

Seed stability is a result too: `seed_stability` tests whether the rows' spreads over
seeds differ (Brown–Forsythe: `scipy.stats.levene` with ``center="median"``), which has
little power with 5 seeds a row.

Only numpy and scipy are used; every distribution is scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: The minimum effect of interest for mAP and accuracy tables: 1 point (scores in [0, 1]).
DEFAULT_DELTA = 0.01
#: Confidence level of every interval.
CONFIDENCE = 0.95
#: Fewer seeds than this: the numbers are shown, the row carries no claim.
MIN_SEEDS_FOR_CLAIM = 5
#: Power the seed count of an inconclusive row is sized for.
TARGET_POWER = 0.8
#: Resamples and seed of the percentile bootstrap (fixed, so tables are reproducible).
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
#: The largest seed count `seeds_for_power` searches.
MAX_SEEDS = 10_000

SUPPORTED = "supported"
SUPPORTED_OTHER_WAY = "supported, other way"
RULED_OUT = "ruled out"
INCONCLUSIVE = "inconclusive"
NO_CLAIM = "no claim"
NOT_AVAILABLE = "n/a"
VERDICTS = (SUPPORTED, SUPPORTED_OTHER_WAY, RULED_OUT, INCONCLUSIVE, NO_CLAIM, NOT_AVAILABLE)


@dataclass(frozen=True)
class PairedComparison:
    """a − b over the seeds both rows have (see the module docstring).

    Every float is on the scale of the scores (e.g. mAP in [0, 1]); fields that cannot be
    estimated (n < 2, or no interval needed) are None. `statistical_verdict` is what the
    interval says; `verdict` is the same unless n < `min_n` (``no claim``) or n < 2."""

    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    boot_low: float | None
    boot_high: float | None
    delta: float
    min_n: int
    statistical_verdict: str
    verdict: str
    seeds_for_80_power: int | None

    @property
    def carries_claim(self) -> bool:
        """True when the verdict is one of the four that claim something."""
        return self.verdict in (SUPPORTED, SUPPORTED_OTHER_WAY, RULED_OUT, INCONCLUSIVE)

    def as_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return {
            "seeds": list(self.seeds),
            "diffs": list(self.diffs),
            "n": self.n,
            "mean": self.mean,
            "sd": self.sd,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p": self.p,
            "boot_low": self.boot_low,
            "boot_high": self.boot_high,
            "delta": self.delta,
            "min_n": self.min_n,
            "statistical_verdict": self.statistical_verdict,
            "verdict": self.verdict,
            "seeds_for_80_power": self.seeds_for_80_power,
        }


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (ddof = 1); None under 2 values."""
    if len(values) < 2:
        return None
    return float(np.std(np.asarray(values, dtype=float), ddof=1))


def pair_by_seed(
    a: Mapping[int, float], b: Mapping[int, float]
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """(seeds, a values, b values) matched by seed, seeds ascending.

    Raises ValueError when the two rows do not have the same seeds: a paired comparison
    of different seeds would silently be an unpaired one."""
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(
            f"paired comparison needs the same seeds on both sides; only in the first: "
            f"{only_a}, only in the second: {only_b}"
        )
    seeds = tuple(sorted(a))
    return (
        seeds,
        np.array([float(a[s]) for s in seeds]),
        np.array([float(b[s]) for s in seeds]),
    )


def t_interval(
    diffs: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(low, high, p): the `confidence` interval of the mean of `diffs` from the t
    distribution with n − 1 degrees of freedom, and the two-sided p of a one-sample t-test
    against 0. Needs n ≥ 2. With sd = 0 the interval is the mean itself and p is 0 (1 when
    the mean is 0 too)."""
    x = np.asarray(diffs, dtype=float)
    n = x.size
    if n < 2:
        raise ValueError("a t interval needs at least 2 values")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0.0:
        return mean, mean, (1.0 if mean == 0.0 else 0.0)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    p = float(sps.ttest_1samp(x, 0.0).pvalue)
    return mean - half, mean + half, p


def bootstrap_interval(
    diffs: Sequence[float],
    confidence: float = CONFIDENCE,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The percentile-bootstrap `confidence` interval of the mean of `diffs`
    (`scipy.stats.bootstrap`, seeded by `seed`). Needs n ≥ 2; constant data give the
    value itself."""
    x = np.asarray(diffs, dtype=float)
    if x.size < 2:
        raise ValueError("a bootstrap interval needs at least 2 values")
    if float(x.std()) == 0.0:
        return float(x[0]), float(x[0])
    result = sps.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_t_power(effect_size: float, n: int, alpha: float = 1 - CONFIDENCE) -> float:
    """Power of the two-sided paired t-test with n pairs at standardised effect
    `effect_size` = true mean difference / sd of the differences (noncentral t)."""
    if n < 2:
        return 0.0
    df = n - 1
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    nc = abs(effect_size) * math.sqrt(n)
    upper = float(sps.nct.sf(crit, df, nc))
    # The far tail (the wrong sign) is below alpha / 2 and vanishes as nc grows; scipy's
    # nct.cdf returns nan there for large nc (e.g. df = 3, nc = 19.6), which read as 0.
    lower = float(sps.nct.cdf(-crit, df, nc))
    return upper + (0.0 if math.isnan(lower) else lower)


def seeds_for_power(
    mean: float,
    sd: float,
    power: float = TARGET_POWER,
    alpha: float = 1 - CONFIDENCE,
    max_n: int = MAX_SEEDS,
) -> int | None:
    """The fewest seeds n ≥ 2 at which a two-sided paired t-test reaches `power` if the
    true effect were the observed one (mean / sd); None when the effect is 0 or no
    n ≤ `max_n` reaches it.

    Power grows with n at a fixed effect, so the answer is found by doubling n until it
    is reached and then bisecting: about 2·log2(n) evaluations of the noncentral t
    instead of one per candidate (which made a table regeneration take half a minute)."""
    if sd <= 0.0 or mean == 0.0:
        return None
    effect = abs(mean) / sd

    def reaches(n: int) -> bool:
        return paired_t_power(effect, n, alpha) >= power

    low, high = 1, 2  # power(1) = 0 < power: `low` never reaches, `high` is the candidate
    while not reaches(high):
        if high >= max_n:
            return None
        low, high = high, min(2 * high, max_n)
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return high


def interval_verdict(low: float, high: float, delta: float) -> str:
    """The verdict of an interval [low, high] of a − b with minimum effect of interest
    `delta` > 0: ruled out inside (−Δ, +Δ), else supported above 0, supported the other
    way below 0, else inconclusive. (An interval inside (−Δ, +Δ) that also excludes 0 is
    ruled out: the effect is real but smaller than the one of interest.)"""
    if delta <= 0:
        raise ValueError(f"the minimum effect of interest must be > 0, got {delta}")
    if -delta < low and high < delta:
        return RULED_OUT
    if low > 0:
        return SUPPORTED
    if high < 0:
        return SUPPORTED_OTHER_WAY
    return INCONCLUSIVE


def paired_comparison(
    a: Mapping[int, float],
    b: Mapping[int, float],
    *,
    delta: float = DEFAULT_DELTA,
    min_n: int = MIN_SEEDS_FOR_CLAIM,
    confidence: float = CONFIDENCE,
) -> PairedComparison:
    """a − b paired by seed (`a`, `b`: seed -> score). Raises ValueError on mismatched
    seeds. `delta` is the minimum effect of interest (on the scores' scale); `min_n` the
    fewest seeds for a claim."""
    seeds, xa, xb = pair_by_seed(a, b)
    d = xa - xb
    n = int(d.size)
    diffs = tuple(float(v) for v in d)
    if n < 2:
        return PairedComparison(
            seeds=seeds, diffs=diffs, n=n, mean=float(d.mean()) if n else None, sd=None,
            ci_low=None, ci_high=None, p=None, boot_low=None, boot_high=None, delta=delta,
            min_n=min_n, statistical_verdict=NOT_AVAILABLE, verdict=NOT_AVAILABLE,
            seeds_for_80_power=None,
        )  # fmt: skip
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    low, high, p = t_interval(d, confidence)
    boot_low, boot_high = bootstrap_interval(d, confidence)
    statistical = interval_verdict(low, high, delta)
    verdict = statistical if n >= min_n else NO_CLAIM
    needs_power = statistical == INCONCLUSIVE
    return PairedComparison(
        seeds=seeds, diffs=diffs, n=n, mean=mean, sd=sd, ci_low=low, ci_high=high, p=p,
        boot_low=boot_low, boot_high=boot_high, delta=delta, min_n=min_n,
        statistical_verdict=statistical, verdict=verdict,
        seeds_for_80_power=seeds_for_power(mean, sd) if needs_power else None,
    )  # fmt: skip


@dataclass(frozen=True)
class StabilityTest:
    """Brown–Forsythe test of equal spread over seeds between rows (`scipy.stats.levene`,
    center = median): the statistic W, its p, and each row's n and sample sd."""

    rows: tuple[str, ...]
    n: tuple[int, ...]
    sd: tuple[float, ...]
    statistic: float | None
    p: float | None


def seed_stability(groups: Mapping[str, Sequence[float]]) -> StabilityTest:
    """Brown–Forsythe (Levene with median centring) across the rows in `groups`
    (row -> its scores over seeds). Needs ≥ 2 rows of ≥ 2 values; otherwise, or when every
    row is constant, the statistic and p are None. With 5 seeds a row the test has little
    power: only a large ratio of spreads can reach p < 0.05."""
    rows = tuple(groups)
    values = [np.asarray(groups[r], dtype=float) for r in rows]
    sds = tuple(float(v.std(ddof=1)) if v.size >= 2 else float("nan") for v in values)
    ns = tuple(int(v.size) for v in values)
    usable = len(values) >= 2 and all(v.size >= 2 for v in values)
    if not usable or all(s == 0.0 for s in sds):
        return StabilityTest(rows=rows, n=ns, sd=sds, statistic=None, p=None)
    result = sps.levene(*values, center="median")
    return StabilityTest(
        rows=rows, n=ns, sd=sds, statistic=float(result.statistic), p=float(result.pvalue)
    )


def verdict_label(comparison: PairedComparison, first: str = "a", second: str = "b") -> str:
    """The verdict as a table cell, naming the row ahead: e.g. ``supported (full ahead)``,
    ``supported (gate0 ahead)``, ``ruled out (|Δ| < 1.0)``, ``no claim (n = 3 < 5)``."""
    v = comparison.verdict
    if v == SUPPORTED:
        return f"supported ({first} ahead)"
    if v == SUPPORTED_OTHER_WAY:
        return f"supported ({second} ahead)"
    if v == NO_CLAIM:
        return f"no claim (n = {comparison.n} < {comparison.min_n})"
    if v == NOT_AVAILABLE:
        return f"n/a (n = {comparison.n})"
    return v


def power_cell(comparison: PairedComparison) -> str:
    """Seeds for 80 % power as a table cell: the count for an inconclusive interval, '—'
    where none is needed, '> MAX_SEEDS' when the effect is too small to reach."""
    if comparison.statistical_verdict != INCONCLUSIVE:
        return "—"
    if comparison.seeds_for_80_power is None:
        return f"> {MAX_SEEDS}"
    return str(comparison.seeds_for_80_power)
