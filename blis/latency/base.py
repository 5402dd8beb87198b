"""The latency-model contract: what one engine step looks like to a model, and the registry of models.

Every time here is in integer microseconds. A model is built from a `SimConfig` by a factory registered
under a name (``--latency-model NAME``); the engine then asks it, once per step, how long the step takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig


@dataclass(slots=True)
class StepBatch:
    """Aggregates of one engine step, cheap to build (no per-request lists except the prefill chunks).

    num_prefill_tokens: new prompt tokens computed this step (sum of ``prefill_chunks`` new tokens).
    num_decode_tokens: decoding requests this step; each computes exactly one token.
    sum_decode_context: sum over decoding requests of the tokens already in their KV cache (tokens
        the attention reads), not counting the token computed this step.
    prefill_chunks: one ``(new_tokens, context_before)`` pair per request computing prompt tokens, where
        ``context_before`` counts tokens already in KV for it (prefix-cache hits plus earlier chunks).
    num_sampled: requests that sample a token at the end of this step (decodes plus last prompt chunks).
    """

    num_prefill_tokens: int = 0
    num_decode_tokens: int = 0
    sum_decode_context: int = 0
    prefill_chunks: list[tuple[int, int]] = field(default_factory=list)
    num_sampled: int = 0

    @property
    def num_prefill_requests(self) -> int:
        return len(self.prefill_chunks)

    @property
    def num_requests(self) -> int:
        return self.num_decode_tokens + len(self.prefill_chunks)

    @property
    def total_tokens(self) -> int:
        return self.num_prefill_tokens + self.num_decode_tokens


@runtime_checkable
class LatencyModel(Protocol):
    """How long the pieces of serving take, in microseconds.

    step_time_us: GPU (and in-step CPU) time of one engine step for the batch.
    queueing_time_us: delay from a request's arrival to its entry in the waiting queue (API server:
        HTTP, tokenisation), for a prompt of ``input_tokens`` tokens.
    output_token_processing_time_us: added to each output token as the client sees it (detokenise,
        stream); it accumulates per token and does not hold the engine.
    scheduling_processing_time_us: CPU time of one ``schedule()`` call, added to every step.
    preemption_processing_time_us: added to a step once per preemption in it.

    Optional fast path (not part of the protocol's required members): ``decode_stretch_us(num_decode,
    sum_context, n) -> list[int] | None``, the ``step_time_us`` of ``n`` consecutive decode-only steps
    (no prefill; ``num_decode`` decodes, all sampling; step i with ``sum_decode_context = sum_context + i *
    num_decode``), exactly what ``step_time_us`` gives for each. The engine uses it to advance decode-only
    stretches at once (issue #17); without it (or when it returns None) it asks ``step_time_us`` per step.
    Also optional: ``step_time_fn() -> Callable[[StepBatch], int]``, ``step_time_us`` as one plain function
    that the engine binds once per run (saves a method call per step).
    """

    name: str

    def step_time_us(self, batch: StepBatch) -> int: ...

    def queueing_time_us(self, input_tokens: int) -> int: ...

    def output_token_processing_time_us(self) -> int: ...

    def scheduling_processing_time_us(self) -> int: ...

    def preemption_processing_time_us(self) -> int: ...

    def describe(self) -> dict:
        """Name, parameters and their source, for the run summary (JSON-serialisable)."""
        ...


class LatencyModelError(ValueError):
    """A latency model cannot be built for the configuration (one line, names what is missing)."""


LatencyModelFactory = Callable[["SimConfig"], LatencyModel]

_FACTORIES: dict[str, LatencyModelFactory] = {}


def register_latency_model(name: str) -> Callable[[LatencyModelFactory], LatencyModelFactory]:
    """Decorator: make ``factory(config) -> LatencyModel`` available as ``--latency-model name``."""

    def deco(factory: LatencyModelFactory) -> LatencyModelFactory:
        _FACTORIES[name] = factory
        return factory

    return deco


# the built-in models' registry names, known without importing their modules (fast start); a test checks them
BUILTIN_MODELS = {"blackbox": "blis.latency.blackbox", "roofline": "blis.latency.roofline",
                  "roofline-v2": "blis.latency.roofline_v2"}


def available_latency_models() -> list[str]:
    _load_builtin_models()
    return sorted(_FACTORIES)


def latency_model_names() -> list[str]:
    """The names `available_latency_models` gives, without importing the built-in models (CLI flags)."""
    return sorted(set(_FACTORIES) | set(BUILTIN_MODELS))


def create_latency_model(name: str, config: "SimConfig") -> LatencyModel:
    """Build the model registered under ``name`` for ``config``."""
    if name in BUILTIN_MODELS and name not in _FACTORIES:
        import importlib

        importlib.import_module(BUILTIN_MODELS[name])
    else:
        _load_builtin_models()
    if name not in _FACTORIES:
        raise LatencyModelError(
            f"latency_model: unknown model {name!r}; available: {', '.join(sorted(_FACTORIES))}"
        )
    return _FACTORIES[name](config)


def _load_builtin_models() -> None:
    # Importing the modules registers them; kept lazy so `import blis` stays light.
    import importlib

    for mod in BUILTIN_MODELS.values():
        importlib.import_module(mod)
