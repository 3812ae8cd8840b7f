"""Name -> class registries for combiners, with hyper-parameter checking at creation."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps method names to classes whose constructor is ``cls(num_tasks, **hparams)``.

    ``create`` rejects unknown names and unknown hyper-parameter names with a ``ValueError`` listing the
    valid choices; the constructors themselves validate the values.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        if not isinstance(name, str) or name not in self._classes:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {self.names()}")
        return self._classes[name]

    def hparams(self, name: str) -> dict[str, Any]:
        """The hyper-parameters ``name`` accepts, with their defaults."""
        sig = inspect.signature(self.get(name).__init__)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name not in ("self", "num_tasks") and p.kind is p.KEYWORD_ONLY
        }

    def create(self, name: str, num_tasks: int, **hparams: Any) -> T:
        cls = self.get(name)
        valid = self.hparams(name)
        unknown = sorted(set(hparams) - set(valid))
        if unknown:
            raise ValueError(f"unknown hyper-parameter(s) {unknown} for {self.kind} {name!r}; valid: {sorted(valid)}")
        return cls(num_tasks, **hparams)
