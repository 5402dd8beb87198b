"""``python -m blis roofline gemv|gemm|attention|kv``: the kernel roofline calculator and KV capacity."""

from __future__ import annotations

import argparse
import json
import sys

from blis.errors import BlisInputError

NAME = "roofline"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", default="H100", help="hardware name or alias (default H100)")
    p.add_argument("--hardware-file", help="JSON/YAML file adding or overriding hardware entries")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _kernel_common(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--precision", default="bf16",
                   help="fp64, fp32, tf32, bf16, fp16, fp8, fp8_e4m3, fp8_e5m2, int8, int4, mxfp8, mxfp4, nvfp4, "
                        "nf4 (default bf16)")  # fmt: skip
    p.add_argument("--efficiency", type=float,
                   help="fraction of peak compute and bandwidth reached, in (0, 1] (default 1 = ideal)")  # fmt: skip
    p.add_argument("--efficiency-file",
                   help="JSON/YAML table {kernel: {precision: fraction of peak}} used when --efficiency is absent")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="roofline of one kernel (GEMV, GEMM, attention) or the KV-cache capacity",
        description="Predict kernel time as max(FLOPs / peak FLOP/s, bytes / bandwidth), scaled by an "
        "efficiency factor; or the KV-cache blocks vLLM would get. The result goes to stdout (--json: as JSON).",
    )
    sub = p.add_subparsers(dest="roofline_kind", metavar="KIND", parser_class=type(p))
    sub.required = True

    g = sub.add_parser("gemv", help="y[N] = W[N x K] x[K]", description="Roofline of a matrix-vector product.")
    g.add_argument("--n", "-N", dest="N", type=int, required=True, help="output features (rows of W)")
    g.add_argument("--k", "-K", dest="K", type=int, required=True, help="input features (columns of W)")
    _kernel_common(g)
    g.set_defaults(handler=_run_gemv)

    m = sub.add_parser("gemm", help="C[M x N] = A[M x K] B[K x N]", description="Roofline of a GEMM.")
    m.add_argument("--m", "-M", dest="M", type=int, required=True, help="rows of A (tokens)")
    m.add_argument("--n", "-N", dest="N", type=int, required=True, help="output features")
    m.add_argument("--k", "-K", dest="K", type=int, required=True, help="input (reduction) features")
    _kernel_common(m)
    m.set_defaults(handler=_run_gemm)

    a = sub.add_parser("attention", help="fused attention", description="Roofline of fused (flash) attention.")
    a.add_argument("--batch", type=int, required=True, help="sequences")
    a.add_argument("--heads", type=int, required=True, help="query heads")
    a.add_argument("--kv-heads", type=int, help="key/value heads (default = heads)")
    a.add_argument("--q-len", type=int, required=True, help="new query tokens per sequence (1 = decode)")
    a.add_argument("--kv-len", type=int, required=True, help="keys per sequence, new tokens included")
    a.add_argument("--head-dim", type=int, default=128, help="head dimension (default 128)")
    a.add_argument("--causal", action=argparse.BooleanOptionalAction, default=True, help="causal mask (default on)")
    _kernel_common(a)
    a.set_defaults(handler=_run_attention)

    k = sub.add_parser("kv", help="KV-cache blocks per GPU", description="KV-cache blocks vLLM would allocate.")
    k.add_argument("--model", required=True, help="built-in model name or HuggingFace id")
    k.add_argument("--model-config", help="HuggingFace config.json (instead of the built-in table)")
    k.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    k.add_argument("--block-size", type=int, default=16, help="tokens per block (default 16)")
    k.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="fraction in (0, 1] (default 0.9)")
    k.add_argument("--max-num-batched-tokens", type=int, default=2048, help="token budget (default 2048)")
    k.add_argument("--max-num-seqs", type=int, default=256, help="running requests (default 256)")
    _common(k)
    k.set_defaults(handler=_run_kv)


def _read_table(path: str | None) -> dict | None:
    if not path:
        return None
    from blis._files import read_mapping

    data = read_mapping(path, "efficiency_file")
    if not all(isinstance(v, dict) for v in data.values()):
        raise BlisInputError(f"efficiency_file: {path} must map kernel -> {{precision: fraction of peak}}")
    return data


def _extra(args):
    if not args.hardware_file:
        return None
    from blis.physics.hardware import load_hardware_file

    return load_hardware_file(args.hardware_file)


def _emit(result, args) -> int:
    d = result.to_dict()
    if args.json:
        json.dump(d, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    shape = ", ".join(f"{k}={v}" for k, v in d["shape"].items())
    lines = [
        f"{d['kernel']} ({shape}) {d['precision']} on {d['hardware']}, efficiency {d['efficiency']:g}",
        f"  FLOPs                {d['flops']:.4g}",
        f"  bytes                {d['bytes']:.4g}",
        f"  arithmetic intensity {d['arithmetic_intensity']:.4g} FLOP/byte (critical {d['critical_intensity']:.4g})",
        f"  compute time         {d['compute_time_us']:.4g} us",
        f"  memory time          {d['memory_time_us']:.4g} us",
        f"  predicted            {d['predicted_time_us']:.4g} us ({d['bottleneck']}-bound)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _run_gemv(args) -> int:
    from blis.physics.kernel_roofline import predict_gemv

    r = predict_gemv(args.N, args.K, args.precision, args.hardware, efficiency=args.efficiency,
                     efficiencies=_read_table(args.efficiency_file), hardware_extra=_extra(args))  # fmt: skip
    return _emit(r, args)


def _run_gemm(args) -> int:
    from blis.physics.kernel_roofline import predict_gemm

    r = predict_gemm(args.M, args.N, args.K, args.precision, args.hardware, efficiency=args.efficiency,
                     efficiencies=_read_table(args.efficiency_file), hardware_extra=_extra(args))  # fmt: skip
    return _emit(r, args)


def _run_attention(args) -> int:
    from blis.physics.kernel_roofline import predict_attention

    r = predict_attention(
        args.batch, args.heads, args.kv_heads or args.heads, args.q_len, args.kv_len, args.head_dim, args.causal,
        args.precision, args.hardware, efficiency=args.efficiency, efficiencies=_read_table(args.efficiency_file),
        hardware_extra=_extra(args),
    )  # fmt: skip
    return _emit(r, args)


def _run_kv(args) -> int:
    from blis.physics.hardware import GiB, get_hardware
    from blis.physics.kv_capacity import kv_memory
    from blis.physics.model_spec import get_model, load_hf_config

    spec = load_hf_config(args.model_config, name=args.model) if args.model_config else get_model(args.model)
    hw = get_hardware(args.hardware, _extra(args))
    mem = kv_memory(spec, hw, args.tp, args.block_size, args.gpu_memory_utilization, args.max_num_batched_tokens,
                    args.max_num_seqs)  # fmt: skip
    if args.json:
        json.dump({"model": spec.name, "hardware": hw.name, "tp": args.tp, **mem.to_dict()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(
        f"{spec.name} on {hw.name} tp={args.tp}: {mem.blocks} blocks of {args.block_size} tokens per GPU "
        f"({mem.blocks * args.block_size} tokens)\n"
        f"  usable {mem.usable_bytes / GiB:.2f} GiB = weights {mem.weight_bytes / GiB:.2f} + activations "
        f"{mem.activation_bytes / GiB:.2f} + runtime {mem.non_torch_bytes / GiB:.2f} "
        f"+ KV {mem.kv_bytes / GiB:.2f} GiB\n"
    )
    return 0
