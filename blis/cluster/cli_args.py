"""Cluster flags of ``python -m blis run`` and the switch between the single-instance and cluster paths."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from blis.config import SimConfig
from blis.errors import BlisInputError

# flag destination -> ClusterConfig field
_FIELDS = {
    "num_instances": "num_instances",
    "routing": "routing",
    "routing_scorers": "routing_scorers",
    "snapshot_refresh_ms": "snapshot_refresh_ms",
    "admission": "admission",
    "token_bucket_capacity": "token_bucket_capacity",
    "token_bucket_rate": "token_bucket_rate",
    "prefill_instances": "prefill_instances",
    "decode_instances": "decode_instances",
    "pd_transfer_bandwidth": "pd_transfer_bandwidth",
    "pd_transfer_latency_ms": "pd_transfer_latency_ms",
    "pd_kv_bytes_per_token": "pd_kv_bytes_per_token",
}


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the cluster flags (all default to None: "not given")."""
    from blis.cluster.admission import available_admission_policies
    from blis.cluster.config import DEFAULT_SCORERS
    from blis.cluster.routing import available_routers, available_scorers

    g = parser.add_argument_group("cluster (many instances behind a router)")
    g.add_argument("--num-instances", type=int, metavar="N",
                   help="identical instances on one simulated clock, >= 1 (default 1: a single instance)")
    g.add_argument("--cluster-file", metavar="PATH",
                   help="YAML with cluster fields: pools (count, role, model, hardware, tp, latency_model, "
                   "alpha_coeffs, beta_coeffs, engine), routing, admission, ...; flags override it")
    g.add_argument("--routing", metavar="POLICY",
                   help=f"routing policy: {', '.join(available_routers())} (default round-robin)")
    g.add_argument("--routing-scorers", metavar="NAME:W,...",
                   help=f"weighted routing: scorers ({', '.join(available_scorers())}) with weights "
                   f"(default {DEFAULT_SCORERS})")
    g.add_argument("--snapshot-refresh-ms", type=float, metavar="MS",
                   help="how often routers see fresh instance state, milliseconds; 0 = always fresh (default 50)")
    g.add_argument("--admission", metavar="POLICY",
                   help=f"admission policy: {', '.join(available_admission_policies())} (default always-admit)")
    g.add_argument("--token-bucket-capacity", type=float, metavar="TOKENS",
                   help="token-bucket size, prompt tokens (> 0)")
    g.add_argument("--token-bucket-rate", type=float, metavar="TOKENS_PER_S",
                   help="token-bucket refill rate, prompt tokens per second (>= 0)")
    g.add_argument("--prefill-instances", type=int, metavar="P",
                   help="prefill/decode disaggregation: prefill instances (>= 1, with --decode-instances)")
    g.add_argument("--decode-instances", type=int, metavar="D",
                   help="prefill/decode disaggregation: decode instances (>= 1)")
    g.add_argument("--pd-transfer-bandwidth", type=float, metavar="GB_PER_S",
                   help="KV transfer bandwidth per request, GB/s (1e9 bytes/s, > 0; default 50)")
    g.add_argument("--pd-transfer-latency-ms", type=float, metavar="MS",
                   help="fixed cost of one KV transfer, milliseconds (>= 0; default 1)")
    g.add_argument("--pd-kv-bytes-per-token", type=float, metavar="BYTES",
                   help="KV bytes per prompt token moved, all TP GPUs (default: from the model spec)")


def cluster_fields(args: argparse.Namespace) -> dict | None:
    """ClusterConfig fields from the flags and ``--cluster-file``; None when none was given."""
    from blis.cluster.config import load_cluster_file

    given = {field: getattr(args, dest) for dest, field in _FIELDS.items() if getattr(args, dest, None) is not None}
    path = getattr(args, "cluster_file", None)
    if path is None and not given:
        return None
    data = {}
    if path is not None:
        data = load_cluster_file(path)
        base_fields = sorted(set(data) & set(SimConfig.model_fields))
        if base_fields:
            raise BlisInputError(f"cluster_file: {', '.join(base_fields)} belong(s) to the instance flags or to a "
                                 "pool, not to the cluster file's top level")
    data.update(given)
    return data


def maybe_simulate_cluster(args: argparse.Namespace, sim_config: SimConfig, progress=None):
    """Run the cluster the flags describe on top of ``sim_config``; None when no cluster flag was given
    (the caller then runs the single-instance simulator)."""
    from blis.cluster.cluster import simulate_cluster
    from blis.cluster.config import ClusterConfig

    data = cluster_fields(args)
    if data is None:
        return None
    base = {name: getattr(sim_config, name) for name in SimConfig.model_fields}
    try:
        config = ClusterConfig(**base, **data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise BlisInputError(f"{loc}: {msg}" if loc else msg) from None
    return simulate_cluster(config, progress=progress)
