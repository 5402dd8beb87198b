"""The coefficients file `blis calibrate` writes (usable with ``--calibration PATH``)."""

from __future__ import annotations

import math

from blis.calibrate.crossval import table


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.1f}"


def to_yaml(res) -> str:
    """Blackbox: a list of table entries (the format of blis/latency/coefficients/blackbox.yaml). Roofline:
    a ``roofline:`` mapping of parameters (the per-GPU fit when several setups were given, else the setup's
    fit) and a ``setups:`` list of per-setup fits. Each fit says whether it passed cross-validation
    (``validated``); the fit log and the cross-validated errors are comments."""
    import yaml

    lines = [
        f"# Fitted by: {res.command}" if res.command else "# Fitted by blis calibrate",
        f"# latency model: {res.latency_model}; method and loss: blis/calibrate/ and docs/validation.md",
    ]
    for g in res.groups:
        lines.append(f"# {g.model} tp{g.tp if g.tp is not None else '*'}: loss {g.loss_start:.4f} -> "
                     f"{g.loss_end:.4f} in {g.evals} simulations ({g.cpu_seconds:.0f} s CPU), penalty "
                     f"{g.penalty:g}; start from {g.start_method}; fitted on: {', '.join(g.runs)}")
    lines.extend("# " + line for line in table(res.loro + res.lomo))
    for e in res.errors:
        lines.append(
            f"# in-run held-back blocks {e.name}{' (overloaded)' if e.overloaded else ''}: "
            + ", ".join(f"{k.removesuffix('_ms')} {_fmt(e.test[k])}%" for k in
                        ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms", "e2e_p99_ms", "completed"))
        )
    setups = [g for g in res.groups if g.model != "*"]
    if res.latency_model == "blackbox":
        entries = [
            {"model": g.model.lower(), "hardware": g.hardware, "tp": g.tp, "alpha": g.params["alpha"],
             "beta": g.params["beta"], "validated": res.validated(g),
             "source": "blis calibrate, fitted on " + ", ".join(g.runs)}
            for g in setups
        ]
        body = yaml.safe_dump(entries, sort_keys=False, default_flow_style=None, width=200)
    else:
        per_gpu = [g for g in res.groups if g.model == "*"]
        main = per_gpu[0] if per_gpu else setups[0]
        doc = {
            "roofline": main.params,
            "validated": res.validated(main),
            "setups": [{"model": g.model, "hardware": g.hardware, "tp": g.tp, "params": g.params,
                        "validated": res.validated(g), "penalty": g.penalty, "fitted_on": g.runs} for g in setups],
        }
        body = yaml.safe_dump(doc, sort_keys=False, width=200)
    return "\n".join(lines) + "\n" + body
