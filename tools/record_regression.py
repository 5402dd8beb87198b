"""Print the MEASURED table of tests/test_regression_real_runs.py for the code and coefficients of now.

    python -m tools.record_regression [--traces ../shared/data/traces/h100-vllm-v1]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tests.test_regression_real_runs import BOUNDED_KEYS, OVERLOADED, OVERLOADED_KEYS, RUNS, Replays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", default=os.environ.get("BLIS_SHARED_DATA", "../shared/data") + "/traces/h100-vllm-v1")
    root = Path(ap.parse_args().traces)
    rep = Replays(root)
    print("MEASURED: dict[str, dict[str, dict[str, float]]] = {")
    for model in ("default", "blackbox"):
        print(f'    "{model}": {{')
        for name in RUNS:
            e = rep.errors(name, None if model == "default" else model)
            keys = OVERLOADED_KEYS if name in OVERLOADED else BOUNDED_KEYS
            print(f'        "{name}": {{\n            ' + ", ".join(f'"{k}": {round(e[k], 2)}' for k in keys) + "},")
        print("    },")
    print("}")


if __name__ == "__main__":
    main()
