"""Claims of the seed papers as data, tested on a run's seeds: a statistic, its uncertainty and a verdict.

A study (``pipelines/configs/studies/<id>.yaml``) lists under ``claims:`` the findings of its paper that a
run can test (schema: ``schemas/claims.schema.json``), each citing its seed file and table/sentence:

- ``ordering``: every method of ``better`` beats every method of ``worse`` on a quantity (e.g. seed 002
  Table 6: on QM9 FairGrad's, Nash-MTL's and FAMO's Delta_m are lower than LS's);
- ``improvement``: a method beats its base method (F-X vs X, seed 000; SAMO-X vs X, seed 002);
- ``agreement``: a deterministic probe matches every published cell within a relative tolerance (seed 001
  Table 1/A7, the CAGrad toy);
- ``rank_agreement``: our ranking of the methods agrees with the published one (Kendall tau);
- ``invariance``: the loss-scale probe's update norms are (or are not) invariant to the loss scales (seed 001
  Figs. A1/A2).

Quantities: ``delta_m`` (``mtl_core.metrics.delta_m`` against our STL runs of the same benchmark, model,
setting and seed, as the report computes it; lower is better), ``<task>/<metric>`` or ``mean <metric>`` (mean
over the tasks reporting that metric, e.g. the average accuracy of Multi-MNIST), and for runs that record
gradient diagnostics ``cosine`` / ``cosine_z`` (mean pairwise cosine of the task gradients w.r.t. the shared
parameters / the shared representation z over the epochs the study's figure draws; higher is more similar,
seed 004 Fig. 2; :func:`mtl_pipelines.report.diagnostics.mean_cosines`).

Statistics (:func:`evaluate`): comparisons of runs are paired by seed (every method of a study runs on the
same seeds, data order and initialisation seed): a two-sided 95% Student t-interval of the per-seed differences,
oriented so that positive supports the claim. A claim over several pairs holds only if every pair holds (an
intersection-union test: each pair at level 5% gives the whole claim level 5%, no correction needed). Rank
agreement uses a percentile bootstrap over seeds (``scipy.stats.bootstrap``) of Kendall's tau between our
per-method means and the published column, together with the exact test of tau over the methods
(``scipy.stats.kendalltau``). Deterministic probes have no seed variation: their verdict compares values.

Verdicts: **reproduced** when the interval lies entirely on the claim's side of the decision boundary, **not
reproduced** when it lies entirely on the other side (for a claim over several pairs: one pair significantly
reversed), **inconclusive** otherwise -- the interval crosses the boundary, fewer than :data:`MIN_SEEDS` seeds,
the benchmark runs as a pipeline check in this profile, or the runs are outside the regime the claim is about
(our STL models more than ``findings.max_stl_gap_percent`` worse than the paper's, :func:`stl_gap`; the statistic
the runs gave is still shown, marked as no verdict); the verdict then names the scale the claim needs.

Probe claims read the structured values the probes attach to their tables (``Table.data``), never titles or
column labels. Records (:class:`mtl_pipelines.report.Verdict`, the report's record) are written per study to
``<reports_dir>/<study>/claims.json`` and into the study's ``summary.json`` (the index's verdict summary).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

# one verdict record for the claims and the report (index, study pages, summary.json)
from mtl_pipelines.report.index import VERDICTS, Verdict

__all__ = [
    "CLAIMS_FILE",
    "CONFIDENCE",
    "KINDS",
    "MIN_SEEDS",
    "VERDICTS",
    "Evidence",
    "Group",
    "Verdict",
    "evaluate",
    "evaluate_study",
    "evidence_from_results",
    "findings",
    "is_pipeline_check",
    "loss_scale_observations",
    "paired_t_interval",
    "schema",
    "stl_gap",
    "toy_observations",
    "validate_claims",
    "write_verdicts",
]

KINDS = ("ordering", "improvement", "agreement", "rank_agreement", "invariance")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = VERDICTS
CLAIMS_FILE = "claims.json"
CONFIDENCE = 0.95
#: Fewest seeds a verdict on runs may rest on. A t-interval exists from 2 seeds, but with 1 degree of freedom
#: t_0.975 = 12.7: the interval is 9x wider than with known variance and rests entirely on the normality of two
#: numbers; a bootstrap over 2 seeds has 3 distinct resamples. From 3 seeds (the papers' own protocol: seeds
#: 000, 002 and 004 average 3 seeds) t_0.975 = 4.30 and the bootstrap has 10 distinct resamples.
MIN_SEEDS = 3
BOOTSTRAP_RESAMPLES = 9999
#: Seed 001 Table A7's budget: '-' means "not all starts reached the global minimum within 100k iterations".
TOY_PUBLISHED_BUDGET = 100_000


# ------------------------------------------------------------------------------------------------ schema
@cache
def schema() -> dict[str, Any]:
    """The JSON schema of a study's ``claims:`` list."""
    return json.loads(resources.files("mtl_pipelines").joinpath("schemas/claims.schema.json").read_text())


def _study_labels(study: Mapping[str, Any]) -> dict[str, set[str]]:
    """Method labels (as the report's rows name them) per benchmark of the study's experiments."""
    out: dict[str, set[str]] = defaultdict(set)
    for block in study.get("experiments", []):
        for entry in block.get("methods", []):
            out[block["benchmark"]].add(entry if isinstance(entry, str) else entry.get("label", entry["name"]))
        if block.get("stl"):
            out[block["benchmark"]].add("STL")
    return out


def validate_claims(study: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The study's claims, checked (ValueError naming ``where``, the claim, the field, the value and what is
    valid): the schema of the claim's kind, unique ids, benchmarks and method labels of the study's experiments,
    reference tables and columns that exist."""
    from mtl_pipelines import references

    claims = study.get("claims", [])
    if not isinstance(claims, list):
        raise ValueError(f"{where}: claims must be a list of claims, got {type(claims).__name__}")
    labels = _study_labels(study)
    defs = schema()["$defs"]
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        at = f"{where}: claims[{i}]"
        if not isinstance(claim, Mapping):
            raise ValueError(f"{at}: a claim must be a mapping, got {type(claim).__name__}")
        at += f" ({claim.get('id', '?')})"
        kind = claim.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{at}.kind: {kind!r} is not a claim kind; valid: {', '.join(KINDS)}")
        validator = jsonschema.Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{kind}"})
        errors = sorted(validator.iter_errors(dict(claim)), key=lambda e: list(e.absolute_path))
        if errors:
            error = errors[0]
            path = ".".join(str(p) for p in error.absolute_path)
            message = error.message
            if error.validator == "additionalProperties":
                message += f"; valid fields of a {kind} claim: {', '.join(sorted(defs[kind]['properties']))}"
            raise ValueError(f"{at}{'.' + path if path else ''}: {message}")
        if claim["id"] in seen:
            raise ValueError(f"{at}.id: duplicate claim id {claim['id']!r}")
        seen.add(claim["id"])
        if "benchmark" in claim:
            bench = claim["benchmark"]
            if bench not in labels:
                raise ValueError(f"{at}.benchmark: {bench!r} is not a benchmark of this study; valid: {sorted(labels)}")
            for name in ("better", "worse", "method", "base", "methods"):
                values = claim.get(name, [])
                for value in [values] if isinstance(values, str) else values:
                    if value not in labels[bench]:
                        raise ValueError(
                            f"{at}.{name}: {value!r} is not a method of this study on {bench}; "
                            f"valid: {', '.join(sorted(labels[bench]))}"
                        )
        if "reference" in claim:
            if claim["reference"] not in references.tables():
                raise ValueError(f"{at}.reference: unknown reference table {claim['reference']!r}")
            ref = references.load(claim["reference"])
            if "column" in claim:
                ref.column(claim["column"])  # ValueError lists the columns
            for method in claim.get("methods", []) if kind == "agreement" else []:
                if not ref.find_rows(method):
                    raise ValueError(f"{at}.methods: {method!r} has no row in {ref.id}; rows: {ref.methods()}")
    return list(claims)


# ------------------------------------------------------------------------------------------------ statistics
def paired_t_interval(differences: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``differences`` and its two-sided Student t-interval (n - 1 degrees of freedom).

    With identical differences (zero spread) the interval is the point itself.
    """
    from scipy import stats

    values = np.asarray(differences, dtype=np.float64)
    if values.size < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {values.size}")
    mean = float(values.mean())
    if float(values.std(ddof=1)) == 0.0:
        return mean, mean, mean
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return mean, float(ci.low), float(ci.high)


def _side(lo: float, hi: float, boundary: float = 0.0) -> str:
    """Verdict of an interval of a statistic whose values above ``boundary`` support the claim."""
    if lo > boundary:
        return REPRODUCED
    if hi < boundary:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


# ------------------------------------------------------------------------------------------------ evidence
@dataclass
class Group:
    """The runs of one benchmark/model/setting of a study, reduced to per-seed quantities per method label."""

    benchmark: str
    model: str
    setting: str
    methods: dict[str, str]  # label -> method key (e.g. "samo+ls" -> "samo+ls", "consmtl" -> "consmtl")
    values: dict[str, dict[int, dict[str, float]]]  # label -> seed -> quantity -> value
    higher: dict[str, bool]  # quantity -> higher is better


@dataclass
class Evidence:
    """What a study produced on one profile: run groups, probe observations and the benchmarks whose claims
    are not tested (pipeline checks, or not run on this profile) with the scale they would need."""

    groups: list[Group] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)
    untested: dict[str, str] = field(default_factory=dict)  # benchmark -> why not, and the scale it needs
    #: the largest Delta_m (%) of our STL runs against the paper's STL row at which a benchmark's claims are
    #: tested (profile ``findings.max_stl_gap_percent``); None: no regime check
    max_stl_gap: float | None = None
    needs: dict[str, str] = field(default_factory=dict)  # benchmark -> the scale the paper's claims need


def _mean_quantities(values: Mapping[str, float], higher: Mapping[str, bool]) -> dict[str, float]:
    by_metric: dict[str, list[float]] = defaultdict(list)
    for name, value in values.items():
        by_metric[name.split("/", 1)[1]].append(value)
    return {f"mean {m}": statistics.fmean(v) for m, v in by_metric.items()}


def evidence_from_results(
    profile: Mapping[str, Any], study: Mapping[str, Any], runs: Sequence[Any], results: Mapping[str, Any]
) -> list[Group]:
    """Per-seed quantities of every method label of a study's runs (``grid.RunSpec``) from their loaded
    results (``report.load_results``): test metrics, their per-metric means and Delta_m against the STL runs of
    the same group and seed (the study's first Delta_m weighting), computed with the report's own helpers so
    the verdicts and the tables agree."""
    from mtl_pipelines.report import diagnostics
    from mtl_pipelines.report import results as report  # the report's grouping and Delta_m (not copied here)

    weighting = _weighting(study)
    higher = dict(getattr(results, "directions", None) or (report.directions(runs) if runs else {}))
    higher_all = dict(higher)
    for name, hib in higher.items():
        higher_all[f"mean {name.split('/', 1)[1]}"] = hib
    higher_all["delta_m"] = False
    higher_all["cosine"] = higher_all["cosine_z"] = True  # more similar task gradients
    out = []
    for (bench, model, setting), group in report.groups(runs).items():
        rows = report.method_rows(group)
        values: dict[str, dict[int, dict[str, float]]] = {}
        for label, row_runs in rows.items():
            per_seed = {}
            for seed, metrics in report.row_values(row_runs, results).items():
                quantities = dict(metrics)
                quantities.update(_mean_quantities(metrics, higher))
                base = report.stl_baseline(group, results, seed)
                if label != "STL" and base:
                    dm = report.delta_m(metrics, base, higher, weighting)
                    if dm is not None:
                        quantities["delta_m"] = dm
                per_seed[seed] = {k: float(v) for k, v in quantities.items() if v is not None}
            for run in row_runs if label != "STL" else ():  # one MTL run per seed: its gradient diagnostics
                per_seed.setdefault(run.seed, {}).update(
                    diagnostics.mean_cosines(study, results[run.run_id].get("diagnostics", []))
                )
            values[label] = per_seed
        methods = {label: ("stl" if label == "STL" else row_runs[0].method) for label, row_runs in rows.items()}
        out.append(Group(bench, model, setting, methods, values, higher_all))
    return out


def _weighting(study: Mapping[str, Any]) -> str:
    """The Delta_m weighting a study's claims use: its table's (the first when it lists several), else metric."""
    weighting = (study.get("table") or {}).get("delta_m") or "metric"
    return weighting[0] if isinstance(weighting, list) else weighting


def _probe_data(tables: Sequence[Any], probe: str, key: str) -> list[Any]:
    """The structured values the probe ``probe`` attached to its tables (``Table.data[key]``), concatenated;
    LookupError when a table carries none (a table not built by that probe)."""
    out: list[Any] = []
    for table in tables:
        data = getattr(table, "data", None) or {}
        if data.get("probe") != probe or key not in data:
            raise LookupError(f"table {table.title!r} carries no {probe} data ({key!r}): not built by that probe")
        out += data[key]
    return out


def toy_observations(tables: Sequence[Any]) -> dict[tuple[str, str, float], int | None]:
    """``{(method key, optimizer, lr): iterations or None}`` from the toy-convergence probe's structured data
    (``Table.data``: ``budget`` and one record per cell; ``None`` = a start did not converge within the
    budget), plus ``("budget", "", 0.0)``: the iteration budget."""
    out: dict[tuple[str, str, float], int | None] = {}
    for record in _probe_data(tables, "toy_convergence", "cells"):
        iterations = record["iterations"]
        out[(record["method"], record["optimizer"], float(record["lr"]))] = (
            None if iterations is None else int(iterations)
        )
    budgets = {int(t.data["budget"]) for t in tables}
    if len(budgets) != 1:
        raise LookupError(f"toy-convergence tables of different budgets: {sorted(budgets)}")
    out[("budget", "", 0.0)] = budgets.pop()
    return out


def loss_scale_observations(tables: Sequence[Any]) -> dict[tuple[str, str, str], float | None]:
    """``{(frozen|learnable, setup, group): gap}`` from the loss-scale probe's structured data (``Table.data``:
    one record per setup and parameter group)."""
    return {
        (record["backbone"], record["setup"], record["group"]): record["gap"]
        for record in _probe_data(tables, "loss_scale", "gaps")
    }


def stl_gap(group: Group) -> tuple[float, str] | None:
    """Delta_m (%) of our STL runs (mean over seeds) against the first published STL row of the benchmark that
    shares metrics with them (``references.find("stl", dataset=...)``), and that table's id; None without one.

    It says whether a run is in the regime the paper's claims are about: single-task models several times worse
    than the paper's are untrained, and orderings of MTL methods measured against them are not its findings.
    """
    from mtl_core.metrics import delta_m
    from mtl_pipelines import references

    stl = group.values.get("STL", {})
    metrics = [name for name in group.higher if "/" in name and all(name in q for q in stl.values())]
    if not stl or not metrics:
        return None
    ours = {name: statistics.fmean(q[name] for q in stl.values()) for name in metrics}
    for ref, row in references.find("stl", dataset=group.benchmark):
        published = {
            f"{col.task}/{col.key}": float(cell.value)
            for col, cell in zip(ref.columns, row.cells)
            if col.kind == "metric" and col.dataset in (None, group.benchmark) and cell.is_number and cell.value
        }
        shared = [name for name in metrics if name in published]
        if shared:
            gap = delta_m({n: ours[n] for n in shared}, {n: published[n] for n in shared}, group.higher)
            return gap, ref.id
    return None


# ------------------------------------------------------------------------------------------------ evaluation
def _group(evidence: Evidence, claim: Mapping[str, Any]) -> Group:
    matches = [
        g
        for g in evidence.groups
        if g.benchmark == claim["benchmark"]
        and claim.get("model", g.model) == g.model
        and claim.get("setting", g.setting) == g.setting
    ]
    if len(matches) != 1:
        found = [(g.benchmark, g.model, g.setting) for g in evidence.groups]
        what = "no run group" if not matches else "several run groups"
        raise LookupError(f"{what} match benchmark/model/setting of the claim; groups: {found}")
    return matches[0]


def _per_seed(group: Group, label: str, quantity: str) -> dict[int, float]:
    if label not in group.values:
        raise LookupError(f"no runs of {label!r} on {group.benchmark}; methods: {sorted(group.values)}")
    out = {s: q[quantity] for s, q in group.values[label].items() if quantity in q and math.isfinite(q[quantity])}
    if not out and group.values[label]:
        valid = sorted({k for q in group.values[label].values() for k in q})
        if not any(quantity in q for q in group.values[label].values()):
            raise LookupError(f"quantity {quantity!r} is not measured for {label!r}; valid: {', '.join(valid)}")
    return out


def _pairs(claim: Mapping[str, Any]) -> list[tuple[str, str]]:
    if claim["kind"] == "improvement":
        return [(claim["method"], claim["base"])]
    return [(b, w) for b in claim["better"] for w in claim["worse"]]


def _compare(study_id: str, claim: Mapping[str, Any], evidence: Evidence) -> Verdict:
    """ordering / improvement: paired t-intervals of the oriented per-seed differences, all pairs must hold."""
    group = _group(evidence, claim)
    quantity = claim["quantity"]
    if quantity not in group.higher:
        raise LookupError(f"quantity {quantity!r} is not measured on {group.benchmark}; valid: {sorted(group.higher)}")
    sign = 1.0 if group.higher[quantity] else -1.0
    lines, results = [], []
    n_seeds = None
    for better, worse in _pairs(claim):
        a, b = _per_seed(group, better, quantity), _per_seed(group, worse, quantity)
        seeds = sorted(set(a) & set(b))
        n_seeds = len(seeds) if n_seeds is None else min(n_seeds, len(seeds))
        diffs = [sign * (a[s] - b[s]) for s in seeds]
        if len(seeds) < MIN_SEEDS:
            lines.append(f"{better} vs {worse}: {len(seeds)} common seed(s)")
            results.append((INCONCLUSIVE, statistics.fmean(diffs) if diffs else None, None, None))
            continue
        mean, lo, hi = paired_t_interval(diffs)
        results.append((_side(lo, hi), mean, lo, hi))
        means = f"{statistics.fmean(a[s] for s in seeds):.4g} vs {statistics.fmean(b[s] for s in seeds):.4g}"
        lines.append(f"{better} vs {worse}: {quantity} {means}, advantage {mean:+.4g} [{lo:+.4g}, {hi:+.4g}]")
    verdicts = [r[0] for r in results]
    if NOT_REPRODUCED in verdicts:
        verdict = NOT_REPRODUCED
    elif all(v == REPRODUCED for v in verdicts):
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    # the reported statistic is the weakest pair (smallest lower bound): the one that decides the claim
    decided = [r for r in results if r[2] is not None]
    weakest = min(decided, key=lambda r: r[2]) if decided else (None, results[0][1], None, None)
    n = n_seeds or 0
    direction = "higher" if sign > 0 else "lower"
    method = (
        f"paired t-interval over {n} seeds, {CONFIDENCE:.0%}, per pair; all {len(results)} pair(s) must hold "
        f"(intersection-union test); statistic = the weakest pair's mean advantage ({quantity}, {direction} is better)"
    )
    detail = "; ".join(lines)
    if n < MIN_SEEDS:
        detail = f"fewer than {MIN_SEEDS} seeds: " + detail
    interval = None if weakest[2] is None else [weakest[2], weakest[3]]
    return _verdict(study_id, claim, verdict, weakest[1], interval, method, n, detail)


def _rank(study_id: str, claim: Mapping[str, Any], evidence: Evidence, seed: int = 0) -> Verdict:
    """rank_agreement: Kendall tau between our per-method means and the published column, bootstrapped over
    seeds (percentile interval); reproduced when the interval and the exact test over the methods both put tau
    above 0."""
    from scipy import stats

    from mtl_pipelines import references

    group = _group(evidence, claim)
    quantity = claim["quantity"]
    ref = references.load(claim["reference"])
    column = ref.column(claim["column"])
    labels = claim.get("methods") or [label for label in group.values if label != "STL"]
    published, ours, names = [], [], []
    for label in labels:
        rows = ref.find_rows(group.methods.get(label, label))
        cells = [r.cell(column.name) for r in rows]
        values = [c.value for c in cells if c.is_number]
        per_seed = _per_seed(group, label, quantity) if label in group.values else {}
        if len(values) == 1 and per_seed:
            published.append(float(values[0]))
            ours.append(per_seed)
            names.append(label)
    seeds = sorted(set.intersection(*(set(o) for o in ours))) if ours else []
    n = len(seeds)
    base = f"Kendall tau of our mean {quantity} vs {ref.id} '{column.name}' over {len(names)} methods"
    if len(names) < 3 or n < MIN_SEEDS:
        detail = f"{len(names)} methods with a published number and runs, {n} common seeds"
        detail += f" (needs >= 3 methods and >= {MIN_SEEDS} seeds)"
        return _verdict(study_id, claim, INCONCLUSIVE, None, None, base, n, detail)
    matrix = np.array([[o[s] for o in ours] for s in seeds], dtype=np.float64)  # seeds x methods
    # both columns are oriented as "lower is better" or not alike: tau > 0 means the same order
    same_direction = column.higher_is_better is None or bool(column.higher_is_better) == group.higher[quantity]
    target = np.asarray(published) if same_direction else -np.asarray(published)

    memo: dict[tuple[int, ...], float] = {}  # a resample's tau depends only on its multiset of seeds

    def tau(index: np.ndarray) -> float:
        key = tuple(sorted(index.astype(int).tolist()))
        if key not in memo:
            memo[key] = float(stats.kendalltau(matrix[list(key)].mean(axis=0), target).statistic)
        return memo[key]

    point = tau(np.arange(n))
    boot = stats.bootstrap(
        (np.arange(n),),
        tau,
        vectorized=False,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    lo, hi = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    test = stats.kendalltau(matrix.mean(axis=0), target, alternative="greater")
    if lo > 0 and test.pvalue < 1 - CONFIDENCE:
        verdict = REPRODUCED
    elif hi <= 0:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    order = [names[i] for i in np.argsort(matrix.mean(axis=0) * (-1 if group.higher[quantity] else 1))]
    detail = (
        f"tau {point:+.3f}, one-sided exact test over the methods p = {test.pvalue:.3g}; our order (best first): "
        + ", ".join(order)
    )
    method = f"{base}; percentile bootstrap over {n} seeds ({BOOTSTRAP_RESAMPLES} resamples), {CONFIDENCE:.0%}"
    return _verdict(study_id, claim, verdict, point, [lo, hi], method, n, detail)


def _agreement(study_id: str, claim: Mapping[str, Any], evidence: Evidence) -> Verdict:
    """agreement (toy convergence, deterministic): every published cell of the claimed rows against ours."""
    from mtl_pipelines import references

    observed = evidence.probes.get(claim["probe"])
    method = (
        f"deterministic probe (no seed variation): each published cell against ours, |ours - published| <= "
        f"{claim['tolerance']:.0%} of published; statistic = the largest relative deviation among compared cells"
    )
    if observed is None:
        return _verdict(study_id, claim, INCONCLUSIVE, None, None, method, 0, f"probe {claim['probe']} did not run")
    ref = references.load(claim["reference"])
    budget = observed[("budget", "", 0.0)]
    tol = claim["tolerance"]
    setting = dict(claim.get("setting", {}))
    agree, disagree, untested, deviations = [], [], [], []
    for method_key in claim["methods"]:
        for row in ref.find_rows(method_key, **setting):
            for column, cell in zip(ref.columns, row.cells):
                lr = column.setting.get("lr")
                if lr is None:
                    continue  # a column whose learning rate was lost in extraction
                key = (method_key, row.setting.get("optimizer", setting.get("optimizer")), float(lr))
                name = f"{row.display_name}/{key[1]} lr={lr:g}"
                if key not in observed:
                    untested.append(f"{name} (not run)")
                    continue
                ours = observed[key]
                if cell.symbol == "-":  # published: not converged within 100k iterations
                    if ours is not None:
                        disagree.append(f"{name}: ours {ours}, published '-' (> {TOY_PUBLISHED_BUDGET})")
                    elif budget >= TOY_PUBLISHED_BUDGET:
                        agree.append(name)
                    else:
                        untested.append(f"{name} ('-', needs a budget of {TOY_PUBLISHED_BUDGET})")
                elif cell.is_number:
                    published = float(cell.value)
                    if ours is None:
                        if budget >= published * (1 + tol):
                            disagree.append(f"{name}: ours not within {budget}, published {published:g}")
                            deviations.append(math.inf)
                        else:
                            needs = f"needs a budget of {published * (1 + tol):.0f}"
                            untested.append(f"{name} (published {published:g}, {needs})")
                        continue
                    deviation = abs(ours - published) / published
                    deviations.append(deviation)
                    (agree if deviation <= tol else disagree).append(
                        f"{name}: ours {ours}, published {published:g}" if deviation > tol else name
                    )
    statistic = max(deviations) if deviations else None
    if disagree:
        verdict = NOT_REPRODUCED
    elif agree:
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    parts = [f"{len(agree)} cell(s) agree"]
    if disagree:
        parts.append(f"{len(disagree)} differ: " + "; ".join(disagree))
    if untested:
        parts.append(f"{len(untested)} untested at budget {budget}: " + "; ".join(untested))
    if statistic is not None and math.isinf(statistic):
        statistic = None
    return _verdict(study_id, claim, verdict, statistic, None, method, 1, ". ".join(parts))


def _invariance(study_id: str, claim: Mapping[str, Any], evidence: Evidence) -> Verdict:
    """invariance (loss-scale probe, deterministic): the relative gaps of the claimed setups and groups."""
    observed = evidence.probes.get(claim["probe"])
    tol = claim["tolerance"]
    invariant = claim["expect"] == "invariant"
    method = (
        f"deterministic probe (fixed seed, no seed variation): relative gap of the update norms, unscaled vs scaled "
        f"losses; {'invariant: every gap <= ' if invariant else 'not invariant: every gap >= '}{tol:g}"
    )
    if observed is None:
        return _verdict(study_id, claim, INCONCLUSIVE, None, None, method, 0, f"probe {claim['probe']} did not run")
    gaps = {}
    for setup in claim["setups"]:
        for grp in claim["groups"]:
            key = (claim["backbone"], setup, grp)
            if key in observed and observed[key] is not None:
                gaps[f"{setup}/{grp}"] = float(observed[key])
    if not gaps:
        return _verdict(study_id, claim, INCONCLUSIVE, None, None, method, 0, "the probe measured none of these")
    holds = {k: (g <= tol if invariant else g >= tol) for k, g in gaps.items()}
    statistic = max(gaps.values()) if invariant else min(gaps.values())
    verdict = REPRODUCED if all(holds.values()) else NOT_REPRODUCED
    detail = f"{claim['backbone']} backbone: " + ", ".join(f"{k} gap {_fmt(g)}" for k, g in gaps.items())
    return _verdict(study_id, claim, verdict, statistic, None, method, 1, detail)


def _verdict(
    study_id: str,
    claim: Mapping[str, Any],
    verdict: str,
    statistic: float | None,
    interval: Sequence[float] | None,
    method: str,
    n_seeds: int,
    detail: str,
) -> Verdict:
    return Verdict(
        study=study_id,
        claim=claim["id"],
        kind=claim["kind"],
        statement=claim["statement"],
        verdict=verdict,
        statistic=statistic,
        interval=interval,
        method=method,
        n_seeds=n_seeds,
        detail=detail,
        source=dict(claim["source"]),
    )


_EVALUATORS = {
    "ordering": _compare,
    "improvement": _compare,
    "rank_agreement": _rank,
    "agreement": _agreement,
    "invariance": _invariance,
}


def evaluate(study: Mapping[str, Any], evidence: Evidence) -> list[Verdict]:
    """The verdict of every claim of ``study`` on ``evidence``: a claim on a benchmark that runs as a pipeline
    check is inconclusive and names the scale it needs; one whose runs are outside its regime (:func:`stl_gap`)
    is inconclusive with what the runs measured beside the reason; a claim whose runs are missing raises
    LookupError."""
    out = []
    for claim in validate_claims(study, f"study {study['id']}"):
        bench = claim.get("benchmark")
        if bench is not None and bench in evidence.untested:
            n = len({s for g in evidence.groups if g.benchmark == bench for v in g.values.values() for s in v})
            detail = f"not tested: {evidence.untested[bench]}"
            out.append(_verdict(study["id"], claim, INCONCLUSIVE, None, None, "not evaluated", n, detail))
            continue
        try:
            verdict = _EVALUATORS[claim["kind"]](study["id"], claim, evidence)
        except LookupError as exc:
            raise LookupError(f"study {study['id']}, claim {claim['id']}: {exc}") from None
        outside = _outside_regime(evidence, bench) if bench is not None else None
        if outside is not None:  # the statistic is shown, but it tests nothing: the runs are not in the regime
            detail = f"{outside}. What the runs measured (not a verdict): {verdict.verdict}; {verdict.detail}"
            verdict = replace(verdict, verdict=INCONCLUSIVE, detail=detail)
        out.append(verdict)
    return out


def _outside_regime(evidence: Evidence, bench: str) -> str | None:
    """Why ``bench``'s runs are outside the regime of the paper's claims (our STL more than
    ``evidence.max_stl_gap`` % worse than the paper's, :func:`stl_gap`), None when they are not (or no check)."""
    if evidence.max_stl_gap is None:
        return None
    groups = [g for g in evidence.groups if g.benchmark == bench]
    gap = stl_gap(groups[0]) if len(groups) == 1 else None
    if gap is None or gap[0] <= evidence.max_stl_gap:
        return None
    return (
        f"not tested at this scale: our STL runs are {gap[0]:.0f}% worse than the paper's STL ({gap[1]}; Delta_m of "
        f"our STL against it, limit {evidence.max_stl_gap:g}%), so the runs are outside the regime of the claim; "
        f"needs {evidence.needs.get(bench, 'the paper protocol')}"
    )


# ------------------------------------------------------------------------------------------------ profile
def findings(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What ``profile`` runs at a finding scale: its ``findings:`` section as ``{"all": bool, "benchmarks":
    [...], "probes": [...], "max_stl_gap_percent": float | None, "notes": {benchmark: text}}`` (``findings:
    all``: everything, the paper profile; none: nothing, a smoke test). ``notes`` say per benchmark why it is
    not at a finding scale (measurements), shown with its claims' verdicts. ValueError names the profile, the
    field and the value when the section is malformed."""
    section = profile.get("findings")
    where = f"profile {profile.get('name', '?')!r}: findings"
    out: dict[str, Any] = {"all": section == "all", "benchmarks": [], "probes": [], "max_stl_gap_percent": None}
    out["notes"] = {}
    if section in (None, "all"):
        return out
    if not isinstance(section, Mapping):
        raise ValueError(f"{where}: {section!r} is neither 'all' nor a mapping of benchmarks/probes")
    unknown = sorted(set(section) - {"benchmarks", "probes", "max_stl_gap_percent", "notes"})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid: benchmarks, probes, max_stl_gap_percent, notes")
    for key in ("benchmarks", "probes"):
        values = section.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where}.{key}: {values!r} is not a list of names")
        out[key] = list(values)
    gap = section.get("max_stl_gap_percent")
    if gap is not None and (isinstance(gap, bool) or not isinstance(gap, int | float) or not math.isfinite(gap)):
        raise ValueError(f"{where}.max_stl_gap_percent: {gap!r} is not a finite number")
    out["max_stl_gap_percent"] = None if gap is None else float(gap)
    notes = section.get("notes", {})
    if not isinstance(notes, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in notes.items()):
        raise ValueError(f"{where}.notes: {notes!r} is not a mapping of benchmark names to texts")
    out["notes"] = dict(notes)
    return out


def is_pipeline_check(profile: Mapping[str, Any], study: Mapping[str, Any] | str, benchmark: str | None = None) -> bool:
    """True when ``study`` (a study or its id), or its ``benchmark`` part, runs in ``profile`` only to check the
    pipeline: its numbers test no claim and cannot be compared with the paper's. A profile marks what runs at a
    finding scale in ``findings: {benchmarks: [...], probes: [<probe study ids>]}`` (or ``findings: all``); a
    study counts as a finding when any of its benchmarks (or, for a probe study, the study itself) is listed."""
    from mtl_pipelines import grid

    found = findings(profile)
    if found["all"]:
        return False
    if isinstance(study, str):
        study = grid.load_studies()[study]
    if not study.get("experiments"):  # a probe that computes its own numbers (the toy, the loss-scale probe)
        return study["id"] not in found["probes"]
    if benchmark is not None:
        return benchmark not in found["benchmarks"]
    return not any(block["benchmark"] in found["benchmarks"] for block in study.get("experiments", []))


def needed_scale(study: Mapping[str, Any], benchmark: str) -> str:
    """What a claim on ``benchmark`` needs, from the paper's protocol of the study (configs/protocols.yaml)."""
    from mtl_pipelines import grid

    for block in study.get("experiments", []):
        if block["benchmark"] == benchmark:
            protocol = grid._protocols()[block["protocol"]]
            train = protocol["train"]
            return (
                f"the paper protocol {block['protocol']!r} ({train['epochs']} epochs, batch {train['batch_size']}) "
                f"on the real {benchmark} data, >= {MIN_SEEDS} seeds (profile `paper`)"
            )
    return "the paper profile"


def evaluate_study(
    profile: Mapping[str, Any],
    study: Mapping[str, Any],
    runs: Sequence[Any] = (),
    results: Mapping[str, Any] | None = None,
    probe_tables: Sequence[Any] = (),
) -> list[Verdict]:
    """Verdicts of ``study`` on ``profile`` from its runs (``grid.RunSpec``) and their loaded results
    (``report.load_results``) or, for a probe study, the probe's tables as the report built them."""
    evidence = Evidence()
    if runs:
        evidence.groups = evidence_from_results(profile, study, runs, results or {})
    found = findings(profile)
    evidence.max_stl_gap = found["max_stl_gap_percent"]
    for block in study.get("experiments", []):
        bench = block["benchmark"]
        evidence.needs[bench] = needed_scale(study, bench)
        unavailable = (profile.get("benchmarks", {}).get(bench) or {}).get("unavailable")
        if unavailable:
            evidence.untested[bench] = (
                f"{bench} is not run on this profile ({unavailable}); needs {needed_scale(study, bench)}"
            )
        elif is_pipeline_check(profile, study, bench):
            note = f" ({found['notes'][bench]})" if bench in found["notes"] else ""
            evidence.untested[bench] = (
                f"{bench} runs as a pipeline check in this profile{note}; needs {needed_scale(study, bench)}"
            )
    probe = study.get("builder")  # the probes are report builders (toy_convergence, loss_scale)
    if probe in _PROBE_READERS and probe_tables:
        evidence.probes[probe] = _PROBE_READERS[probe](probe_tables)
    return evaluate(study, evidence)


_PROBE_READERS = {"toy_convergence": toy_observations, "loss_scale": loss_scale_observations}


def write_verdicts(profile: Mapping[str, Any], study_id: str, verdicts: Sequence[Verdict]) -> Path:
    """``<reports_dir>/<study_id>/claims.json`` (atomic), a list of verdict records."""
    from mtl_pipelines import io

    root = Path(profile["reports_dir"]).resolve()
    path = (root / study_id / CLAIMS_FILE).resolve()
    if root not in path.parents:
        raise ValueError(f"study id {study_id!r} would write outside {root}")
    io.write_json(path, [v.to_json() for v in verdicts])
    return path
