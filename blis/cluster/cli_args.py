"""Cluster flags of ``python -m blis run`` (generated from the ``ClusterConfig`` fields) and the switch between
the single-instance and cluster paths."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from blis.config import SimConfig
from blis.errors import BlisInputError, format_validation_error

# flags that only apply to prefill/decode disaggregation
PD_FIELDS = ("pd_transfer_bandwidth", "pd_transfer_latency_ms", "pd_kv_bytes_per_token")


def add_cluster_arguments(parser: argparse.ArgumentParser) -> list:
    """Add ``--cluster-file`` and one flag per ClusterConfig field (all default to None: "not given");
    returns the generated flags."""
    from blis.cluster.config import ClusterConfig
    from blis.commands._flags import add_model_flags

    g = parser.add_argument_group("cluster (many instances behind a router)")
    g.add_argument("--cluster-file", metavar="PATH",
                   help="YAML with cluster fields: pools (count, role, model, hardware, tp, latency_model, "
                   "alpha_coeffs, beta_coeffs, engine), routing, admission, ...; flags override it")
    flags = add_model_flags(g, ClusterConfig, exclude=set(SimConfig.model_fields))
    parser.set_defaults(cluster_flags=flags)
    return flags


def cluster_fields(args: argparse.Namespace) -> dict | None:
    """ClusterConfig fields from the flags and ``--cluster-file``; None when none was given."""
    from blis.cluster.config import load_cluster_file
    from blis.commands._flags import given as given_flags

    given = given_flags(args, getattr(args, "cluster_flags", []))
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


def cluster_config(args: argparse.Namespace, sim_config: SimConfig):
    """The ClusterConfig the flags describe on top of ``sim_config``; None when no cluster flag was given.
    Flags that do not apply (P/D transfer flags without disaggregation) are refused."""
    from blis.cluster.config import ClusterConfig

    data = cluster_fields(args)
    if data is None:
        return None
    base = {name: getattr(sim_config, name) for name in SimConfig.model_fields}
    try:
        config = ClusterConfig(**base, **data)
    except ValidationError as exc:
        raise BlisInputError(format_validation_error(exc)) from None
    pd = [f for f in PD_FIELDS if f in data]
    if pd and not config.disaggregated:
        raise BlisInputError(f"{pd[0]}: applies only to prefill/decode disaggregation (give --prefill-instances "
                             "and --decode-instances, or prefill/decode pools)")
    return config


def maybe_simulate_cluster(args: argparse.Namespace, sim_config: SimConfig, progress=None):
    """Run the cluster the flags describe on top of ``sim_config``; None when no cluster flag was given
    (the caller then runs the single-instance simulator)."""
    from blis.cluster.cluster import simulate_cluster

    config = cluster_config(args, sim_config)
    return None if config is None else simulate_cluster(config, progress=progress)
