"""Physics of a serving step, independent of any latency model.

`model_spec` (what a model is: layers, heads, experts), `hardware` (what a GPU delivers: peaks, bandwidths,
memory), `step_cost` (FLOPs and bytes of one engine step, per GPU), `kernel_roofline` (roofline time of one
kernel) and `kv_capacity` (KV-cache blocks per GPU); `precision` (weight formats, tensor-core rate),
`attention` (windowed, MLA and sparse attention counts), `moe` (experts hit, EP load imbalance, all-to-all),
`layer_cost` (step pieces of non-uniform models), `hf_config` and `model_registry` (readers). Nothing here
imports the engine or a latency model.
"""
