"""`python -m blis list models|hardware|presets|latency-models|routing|admission`: the names blis knows.

One name per line on stdout (``--json``: a JSON list of objects with the details)."""

from __future__ import annotations

import json
import sys


def _models() -> list[dict]:
    from blis.physics.model_spec import available_models, get_model

    out = []
    for name in available_models():
        m = get_model(name)
        out.append({"name": name, "hf_id": m.hf_id, "architecture": m.architecture, "layers": m.num_layers,
                    "params_b": round(m.param_count() / 1e9, 2)})
    return out


def _hardware() -> list[dict]:
    from blis.physics.hardware import available_hardware, get_hardware

    out = []
    for name in available_hardware():
        h = get_hardware(name)
        out.append({"name": name, "aliases": list(h.aliases), "memory_gib": round(h.memory_bytes / 2**30, 1),
                    "memory_bandwidth_tbps": round(h.memory_bandwidth_Bps / 1e12, 3)})
    return out


def _presets() -> list[dict]:
    from blis.workload.presets import PRESETS

    keys = ("mean", "std", "min", "max")
    return [{"name": name, "input_tokens": dict(zip(keys, inp)), "output_tokens": dict(zip(keys, out))}
            for name, (inp, out) in sorted(PRESETS.items())]


def _named(names) -> list[dict]:
    return [{"name": n} for n in names]


def _latency_models() -> list[dict]:
    from blis.latency.base import available_latency_models

    return _named(available_latency_models())


def _routing() -> list[dict]:
    from blis.cluster.routing import available_routers

    return _named(available_routers())


def _admission() -> list[dict]:
    from blis.cluster.admission import available_admission_policies

    return _named(available_admission_policies())


KINDS = {
    "models": _models,
    "hardware": _hardware,
    "presets": _presets,
    "latency-models": _latency_models,
    "routing": _routing,
    "admission": _admission,
}


def register(sub) -> None:
    p = sub.add_parser("list", help="list the models, hardware, presets, latency models or policies blis knows",
                       description="List the names blis knows, one per line on stdout (--json: with details).")
    p.add_argument("kind", choices=tuple(KINDS), help="what to list")
    p.add_argument("--json", action="store_true", help="print JSON with details")
    p.set_defaults(handler=run)


def run(args) -> int:
    rows = KINDS[args.kind]()
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        sys.stdout.write("".join(r["name"] + "\n" for r in rows))
    return 0
