"""Same config and seed: byte-identical summary JSON, also across processes with different hash seeds."""

import os
import subprocess
import sys

import blis
from blis.workload.request_table import RequestTable

SCRIPT = """
import blis, numpy as np
from blis.workload.request_table import RequestTable
rng = np.random.default_rng(3)
n = 400
t = RequestTable(np.sort(rng.integers(0, 20_000_000, n)), rng.integers(1, 500, n), rng.integers(1, 300, n),
                 prompt_id=rng.integers(0, 40, n))
cfg = blis.SimConfig(latency_model="blackbox", alpha_coeffs=(100, 1, 5), beta_coeffs=(3000, 20, 30),
                     engine=blis.EngineConfig(total_kv_blocks=300, max_num_seqs=32))
print(blis.simulate(cfg, requests=t).to_json())
"""


def _run_in_subprocess(hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_same_config_same_json_in_process():
    cfg = blis.SimConfig(latency_model="blackbox", alpha_coeffs=(100, 1, 5), beta_coeffs=(3000, 20, 30),
                         engine=blis.EngineConfig(total_kv_blocks=500),
                         workload=blis.Workload.preset("chatbot", rate=30, num_requests=300, seed=7))
    assert blis.simulate(cfg).to_json() == blis.simulate(cfg).to_json()


def test_same_json_across_processes_and_hash_seeds():
    a = _run_in_subprocess("1")
    b = _run_in_subprocess("12345")
    assert a == b
    assert '"preemption_count"' in a


def test_different_workload_seed_changes_result():
    def run(seed):
        cfg = blis.SimConfig(latency_model="blackbox", engine=blis.EngineConfig(total_kv_blocks=2000),
                             workload=blis.Workload.preset("chatbot", rate=10, num_requests=50, seed=seed))
        return blis.simulate(cfg).to_json()

    assert run(1) != run(2)


def test_simulate_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blis.simulate(blis.SimConfig(latency_model="blackbox", engine=blis.EngineConfig(total_kv_blocks=100)),
                  requests=RequestTable([0], [10], [5]))
    assert list(tmp_path.iterdir()) == []
