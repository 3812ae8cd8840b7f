"""Method strings (``ls``, ``exact+pcgrad``, ``samo+fairgrad``, ``consmtl``) and hyper-parameter routing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import aggregators, estimators, weightings
from .consmtl import lower_level_hparams

CONSMTL = "consmtl"


@dataclass(frozen=True)
class Method:
    """A parsed method: ``kind`` is ``"weighting"`` (one backward of ``weighting.loss``), ``"gradient"``
    (an estimator x a combiner) or ``"consmtl"`` (exact gradients, ConsMTL's upper level, its lower level).
    """

    text: str
    kind: str
    combiner: str
    estimator: str | None = None
    combiner_hparams: dict[str, Any] = field(default_factory=dict)
    estimator_hparams: dict[str, Any] = field(default_factory=dict)
    lower_hparams: dict[str, Any] = field(default_factory=dict)

    @property
    def combiner_is_weighting(self) -> bool:
        return self.combiner in weightings.names()


def _valid_methods_hint() -> str:
    return (
        f"a weighting {weightings.names()}, '{CONSMTL}', or '<estimator>+<combiner>' with estimator in "
        f"{estimators.names()} and combiner an aggregator {aggregators.names()} or a weighting"
    )


def _split(method: Any) -> tuple[str, str | None, str]:
    """``(kind, estimator, combiner)`` of a method string; unknown parts raise ``ValueError``."""
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be a non-empty string, got {method!r}; valid: {_valid_methods_hint()}")
    if "+" in method:
        estimator, _, combiner = method.partition("+")
        if estimator not in estimators.names():
            raise ValueError(f"unknown estimator {estimator!r} in method {method!r}; valid: {estimators.names()}")
        if combiner not in aggregators.names() and combiner not in weightings.names():
            raise ValueError(
                f"unknown combiner {combiner!r} in method {method!r}; valid aggregators: {aggregators.names()}, "
                f"valid weightings: {weightings.names()}"
            )
        return "gradient", estimator, combiner
    if method == CONSMTL:
        return "consmtl", "exact", CONSMTL
    if method in weightings.names():
        return "weighting", None, method
    if method in aggregators.names():
        raise ValueError(
            f"method {method!r} is an aggregator: name the estimator of its per-task gradients, e.g. "
            f"'exact+{method}' (or 'features+{method}', 'samo+{method}'); valid: {_valid_methods_hint()}"
        )
    raise ValueError(f"unknown method {method!r}; valid: {_valid_methods_hint()}")


def method_hparams(method: str) -> dict[str, dict[str, Any]]:
    """The hyper-parameters of every component of ``method`` with their defaults, by component name.

    E.g. ``method_hparams("samo+fairgrad") == {"samo": {"rho": 0.001, "alpha": 0.5, ...}, "fairgrad": {"alpha": 1.0}}``.
    ConsMTL's component ``"consmtl"`` holds its upper-level aggregator's and its lower level's (``lambda_``,
    ``extra_clip``).
    """
    kind, estimator, combiner = _split(method)
    if kind == "consmtl":
        return {CONSMTL: {**aggregators.hparams(CONSMTL), **lower_level_hparams()}}
    registry = weightings if combiner in weightings.names() else aggregators
    out: dict[str, dict[str, Any]] = {}
    if estimator is not None:
        out[estimator] = estimators.hparams(estimator)
    out[combiner] = registry.hparams(combiner)
    return out


def parse_method(method: str, hparams: Mapping[str, Any] | None = None) -> Method:
    """Parse ``method`` and route ``hparams`` to its components by name.

    A plain name goes to the one component that accepts it (``rho`` to the estimator, ``c`` to CAGrad, ...);
    a name two components accept (``alpha`` in ``samo+fairgrad``) must be qualified with the component:
    ``"samo.alpha"``, ``"fairgrad.alpha"``. A name no component accepts raises ``ValueError`` listing them all.
    """
    kind, estimator, combiner = _split(method)
    components = method_hparams(method)
    routed: dict[str, dict[str, Any]] = {label: {} for label in components}
    for key, value in (hparams or {}).items():
        if not isinstance(key, str):
            raise ValueError(f"hyper-parameter names must be strings, got {key!r}")
        label, dot, name = key.partition(".")
        if dot:
            if label not in components or name not in components[label]:
                raise ValueError(
                    f"unknown hyper-parameter {key!r} for method {method!r}; valid: {_listing(components)}"
                )
            targets = [label]
        else:
            name = key
            targets = [label for label, valid in components.items() if name in valid]
            if not targets:
                raise ValueError(
                    f"unknown hyper-parameter {key!r} for method {method!r}; valid: {_listing(components)}"
                )
            if len(targets) > 1:
                qualified = [f"{t}.{name}" for t in targets]
                raise ValueError(f"hyper-parameter {key!r} is ambiguous in method {method!r}; use one of {qualified}")
        if name in routed[targets[0]]:
            raise ValueError(f"hyper-parameter {key!r} given twice for method {method!r}")
        routed[targets[0]][name] = value
    if kind == "consmtl":
        lower_names = set(lower_level_hparams())
        lower = {k: v for k, v in routed[CONSMTL].items() if k in lower_names}
        upper = {k: v for k, v in routed[CONSMTL].items() if k not in lower_names}
        return Method(method, kind, CONSMTL, "exact", upper, {}, lower)
    return Method(
        method,
        kind,
        combiner,
        estimator,
        routed[combiner],
        routed[estimator] if estimator is not None else {},
    )


def _listing(components: Mapping[str, Mapping[str, Any]]) -> str:
    return "; ".join(f"{label}: {sorted(valid)}" for label, valid in components.items())
