"""Mixins for combiner state that must survive a ``state_dict`` round trip."""

from __future__ import annotations

from typing import Any, ClassVar

import torch


class LazyBuffers:
    """Buffers whose shape is known only at the first call (e.g. K x n trackers) are resized on load."""

    lazy_buffers: ClassVar[tuple[str, ...]] = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        for name in self.lazy_buffers:
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[misc]


class Seeded:
    """Randomised methods draw from a private CPU generator saved in ``state_dict`` as extra state.

    They never touch the global RNG streams, so adding one to a run does not change the data order or the
    initialisation of anything else.
    """

    def _init_generator(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def get_extra_state(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["rng"])
