"""Parts of kernels_bench that need torch: the fp32 reference, the input builders (on the CPU), and, where
a CUDA device is present, a small real sweep and the kernel comparison. Skipped without torch."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from kernels_bench import attention_decode, attention_prefill, gemm, reference  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _naive_attention(q, k, v, causal):
    """Per head, per query, the textbook softmax(q.k / sqrt(d)) v in float64 (q: [s, h, d])."""
    sq, h, d = q.shape
    skv, kvh, _ = k.shape
    out = torch.empty(sq, h, d, dtype=torch.float64)
    q, k, v = q.double(), k.double(), v.double()
    for head in range(h):
        kv = head // (h // kvh)
        for i in range(sq):
            last = skv - sq + i if causal else skv - 1
            scores = torch.stack([q[i, head] @ k[j, kv] for j in range(last + 1)]) / math.sqrt(d)
            p = torch.softmax(scores, dim=0)
            out[i, head] = sum(p[j] * v[j, kv] for j in range(last + 1))
    return out


@pytest.mark.parametrize("causal", [True, False])
def test_reference_matches_textbook_attention(causal):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(6, 4, 8, generator=g)
    k = torch.randn(6, 2, 8, generator=g)
    v = torch.randn(6, 2, 8, generator=g)
    ref = reference.attention_fp32(q, k, v, causal, max_bytes=64)  # tiny chunks exercise the loop
    assert reference.relative_error(ref, _naive_attention(q, k, v, causal)) < 1e-6


def test_sdpa_prefill_inputs_pass_the_reference_check():
    inp = attention_prefill.PrefillInputs([64, 64], 8, 2, 32, attention_prefill.SDPA, device="cpu")
    out = inp.launcher(causal=True)()
    assert attention_prefill.check_against_reference(inp, out, "cpu test") < 1e-2


def test_paged_decode_pages_cover_the_cache_once():
    inp = attention_decode.PagedDecodeInputs(3, 40, 8, 2, 16, "bf16", device="cpu")
    assert inp.k_cache.shape == (3 * 3, 16, 2, 16)  # 40 tokens -> 3 pages of 16 per sequence
    assert sorted(inp.indices.tolist()) == list(range(9))
    assert inp.last_page_len.tolist() == [8, 8, 8]
    k, v = inp.sequence_kv(2)
    assert k.shape == (40, 2, 16) and v.shape == (40, 2, 16)
    # Decoding through SDPA on the gathered cache agrees with the fp32 reference.
    q = inp.q[2:3].transpose(0, 1).unsqueeze(0)  # [1, heads, 1, d]
    out = attention_prefill.sdpa(q, k.transpose(0, 1).unsqueeze(0), v.transpose(0, 1).unsqueeze(0), False)
    ref = reference.attention_fp32(inp.q[2:3], k, v, causal=False)
    assert reference.relative_error(out[0].transpose(0, 1), ref) < 1e-2


def test_fp8_cache_is_filled_with_nonzero_values():
    cache = attention_decode.random_cache((5, 16, 2, 8), "fp8", device="cpu", chunk=2)
    assert cache.dtype == torch.float8_e4m3fn
    assert bool((cache.float() != 0).any(dim=(1, 2, 3)).all())  # every chunk was written


def test_bf16_gemm_launcher_computes_a_times_w_transposed():
    a = gemm.random_matrix(8, 32, "bf16", device="cpu")
    w = gemm.random_matrix(16, 32, "bf16", device="cpu")
    out = gemm.make_launcher(a, w, "bf16")()
    assert out.shape == (8, 16)
    assert reference.relative_error(out, a.double() @ w.double().t()) < 1e-2


@needs_cuda
def test_small_real_sweep_passes_the_check(tmp_path):
    from kernels_bench.__main__ import main

    rc = main(["all", "--gpu", torch.cuda.get_device_name().split()[1].lower(), "--out", str(tmp_path),
               "--models", "llama-3.1-8b", "--tp", "8", "--quick", "--target-ms", "5"])
    assert rc == 0
    assert (tmp_path / "gemm_bf16.csv").exists() and (tmp_path / "provenance.json").exists()


@needs_cuda
def test_compare_attention_small_shape():
    from kernels_bench import compare_attention as ca
    from kernels_bench.timing import CudaEventTimer

    shape = ca.CompareShape(2, 8, 8, 512, 64, "test")
    rows = ca.compare_shape(shape, CudaEventTimer(min_reps=3, max_reps=5, target_ms=5), 1e18)
    ok = [r for r in rows if r.status == "OK"]
    assert ok, rows
    assert not [r for r in rows if r.status in ("FAIL", "INVALID")], rows
