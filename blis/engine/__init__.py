"""The engine: one vLLM-V1 serving instance (scheduler, paged KV cache with prefix caching) as a SimPy process.

The boundary rule: code outside ``blis/engine/`` imports only from ``blis.engine`` (this module), never from
its submodules, and never touches an instance's ``scheduler`` or block pool. What it gets:

- `Instance(env, index, engine, num_blocks, model, block_keys, log, input_tokens, output_tokens, enter_us,
  role="mixed"|"prefill"|"decode")`: build one; feed it with ``assign_all``/``push``/``close``.
- Read-only surface: ``load()`` (a frozen `InstanceLoad`: waiting, running, in flight, KV blocks used and
  total), ``prefix_hit_blocks(req)``, ``num_prompt_blocks(req)``, ``cache_stats()`` (a frozen `CacheStats`),
  ``num_kv_blocks``, ``enter_us``, ``steps`` (the `StepLog`), ``num_routed``, ``in_flight``, ``role``.
- `LoadProbe(instances)`: the same load numbers for many instances at once (routers, per decision).
- `BlockKeys` (content keys of full KV blocks, built once per block size), `RequestLog` and `StepLog` (what a
  run recorded), `Request`/`RequestStatus`/`prefill_chunk` (the scheduler's vocabulary, for reading and
  tests).

`tests/test_architecture.py` enforces the rule by reading the source tree.
"""

from blis.engine.block_keys import BlockKeys
from blis.engine.instance import CacheStats, Instance, InstanceLoad, LoadProbe, Role
from blis.engine.request import Request, RequestStatus, prefill_chunk
from blis.engine.timeline import RequestLog, StepLog

__all__ = ["BlockKeys", "CacheStats", "Instance", "InstanceLoad", "LoadProbe", "Request", "RequestLog",
           "RequestStatus", "Role", "StepLog", "prefill_chunk"]
