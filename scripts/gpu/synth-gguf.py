#!/usr/bin/env python3
"""Synthetic GGUFs for the MoE-vs-dense GPU benchmark (issue 9).

Writes the three shapes of the issue's reference table, with Q4_0 weights written directly as
raw blocks (random nibbles, one small constant f16 scale per block), F32 norms and F32 MoE
routers (llama-quantize keeps `ffn_gate_inp` in F32 too), and the tokenizer keys copied from
SmolLM2-135M (vocab 49152):

  moe30b   Qwen3-30B-A3B-like  qwen3moe, 48 layers, 128 experts, 8 used   ~16.98 GB
  dense32b Qwen3-32B-like      qwen3,    64 layers                        ~17.84 GB
  dense3b  3B dense            qwen3,    28 layers (Llama-3.2-3B shape)    ~1.76 GB

Weight values don't matter for speed except the router's: random router weights spread the
tokens of a prompt over the experts as a real model does, so pp touches many experts.
Every tensor is a view into one shared pool of random blocks (at a random offset), so writing
17 GB needs ~300 MB of memory and runs at disk speed.

  synth-gguf.py --out DIR [--shapes moe30b,dense32b,dense3b] [--layers N] [--sparse]
                [--tokenizer models/SmolLM2-135M-Instruct.Q4_1.gguf]

--layers N overrides the layer count of every shape (a tiny smoke test). --sparse writes the
header and tensor infos and then extends the file to its full length without writing data (a
sparse file: zero weights, takes no disk space): enough for `paddock models` / the budget, which
read the header and check the file length only; not for benchmarking.

Needs the `gguf` package (gguf-py) and numpy. Prints one JSON line per file written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import gguf
except ImportError:  # the device copy carries gguf-py under build/gpu/py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build" / "gpu" / "py"))
    import gguf

Q4_0 = gguf.GGMLQuantizationType.Q4_0
QK = 32  # elements per Q4_0 block
QB = 18  # bytes per Q4_0 block: f16 scale + 16 bytes of nibbles

SHAPES = {
    # Qwen3-30B-A3B: hidden 2048, 32 q heads / 4 kv heads of 128, 128 experts of 768, 8 used.
    "moe30b": dict(arch="qwen3moe", n_layer=48, n_embd=2048, n_head=32, n_head_kv=4, head_dim=128,
                   n_ff=6144, n_expert=128, n_expert_used=8, n_ff_exp=768, ctx=40960),
    # Qwen3-32B: hidden 5120, 64 q heads / 8 kv heads of 128, FFN 25600.
    "dense32b": dict(arch="qwen3", n_layer=64, n_embd=5120, n_head=64, n_head_kv=8, head_dim=128,
                     n_ff=25600, ctx=40960),
    # 3B dense: hidden 3072, 24 q heads / 8 kv heads of 128, FFN 8192 (1.76 GB at Q4_0).
    "dense3b": dict(arch="qwen3", n_layer=28, n_embd=3072, n_head=24, n_head_kv=8, head_dim=128,
                    n_ff=8192, ctx=40960),
}

FILE_NAMES = {
    "moe30b": "synth-qwen3moe-30b-a3b-Q4_0.gguf",
    "dense32b": "synth-qwen3-32b-Q4_0.gguf",
    "dense3b": "synth-qwen3-3b-Q4_0.gguf",
}


def tensor_list(s: dict, n_vocab: int) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, ggml dims ne0-first, kind) with kind 'q4' (Q4_0), 'norm' (F32 ones) or 'router' (F32)."""
    e, hd = s["n_embd"], s["head_dim"]
    q, kv = s["n_head"] * hd, s["n_head_kv"] * hd
    out = [("token_embd.weight", (e, n_vocab), "q4")]
    for i in range(s["n_layer"]):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", (e,), "norm"),
            (b + "attn_q.weight", (e, q), "q4"),
            (b + "attn_k.weight", (e, kv), "q4"),
            (b + "attn_v.weight", (e, kv), "q4"),
            (b + "attn_output.weight", (q, e), "q4"),
            (b + "attn_q_norm.weight", (hd,), "norm"),
            (b + "attn_k_norm.weight", (hd,), "norm"),
            (b + "ffn_norm.weight", (e,), "norm"),
        ]
        if s["arch"] == "qwen3moe":
            n_x, f = s["n_expert"], s["n_ff_exp"]
            out += [
                (b + "ffn_gate_inp.weight", (e, n_x), "router"),
                (b + "ffn_gate_exps.weight", (e, f, n_x), "q4"),
                (b + "ffn_up_exps.weight", (e, f, n_x), "q4"),
                (b + "ffn_down_exps.weight", (f, e, n_x), "q4"),
            ]
        else:
            f = s["n_ff"]
            out += [
                (b + "ffn_gate.weight", (e, f), "q4"),
                (b + "ffn_up.weight", (e, f), "q4"),
                (b + "ffn_down.weight", (f, e), "q4"),
            ]
    out += [("output_norm.weight", (e,), "norm"), ("output.weight", (e, n_vocab), "q4")]
    return out


def nbytes(dims: tuple[int, ...], kind: str) -> int:
    n = int(np.prod(dims))
    if kind == "q4":
        assert dims[0] % QK == 0, dims
        return n // QK * QB
    return n * 4


def copy_tokenizer(w: gguf.GGUFWriter, path: Path | gguf.GGUFReader) -> int:
    """Copies every tokenizer.* key of `path` (a file or an open reader); returns the vocabulary size."""
    r = path if isinstance(path, gguf.GGUFReader) else gguf.GGUFReader(path)
    n_vocab = 0
    for name, field in r.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        value = field.contents()
        if name == "tokenizer.ggml.tokens":
            n_vocab = len(value)
        w.add_key_value(name, value, vtype, sub_type=sub)
    if not n_vocab:
        raise SystemExit(f"{path}: no tokenizer.ggml.tokens")
    return n_vocab


def block_pool(n_bytes: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Random Q4_0 blocks with a constant f16 scale, as a flat uint8 array of whole blocks."""
    n_blocks = -(-n_bytes // QB)
    pool = rng.integers(0, 256, size=(n_blocks, QB), dtype=np.uint8)
    pool[:, 0:2] = np.frombuffer(np.float16(scale).tobytes(), dtype=np.uint8)
    return pool.reshape(-1)


def write_one(shape: str, out_dir: Path, tokenizer: Path, layers: int | None, sparse: bool,
              seed: int) -> dict:
    s = dict(SHAPES[shape])
    if layers is not None:
        s["n_layer"] = layers
    path = out_dir / FILE_NAMES[shape]
    if layers is not None:
        path = path.with_name(path.stem + f"-{layers}L.gguf")
    t0 = time.time()
    w = gguf.GGUFWriter(path, s["arch"])
    w.add_name(f"synthetic {shape}")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_block_count(s["n_layer"])
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["n_embd"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_key_length(s["head_dim"])
    w.add_value_length(s["head_dim"])
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    if s["arch"] == "qwen3moe":
        w.add_expert_count(s["n_expert"])
        w.add_expert_used_count(s["n_expert_used"])
        w.add_expert_feed_forward_length(s["n_ff_exp"])
    n_vocab = copy_tokenizer(w, tokenizer)

    tensors = tensor_list(s, n_vocab)
    total = 0
    for name, dims, kind in tensors:
        nb = nbytes(dims, kind)
        total += nb
        w.add_tensor_info(name, tuple(reversed(dims)), np.float32, nb,
                          raw_dtype=Q4_0 if kind == "q4" else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    data_start = fout.tell()
    align = w.data_alignment
    if sparse:
        end = data_start + sum(gguf.GGUFWriter.ggml_pad(nbytes(d, k), align) for _, d, k in tensors)
        fout.flush()
        fout.truncate(end)
    else:
        rng = np.random.default_rng(seed)
        largest = max(nbytes(d, k) for _, d, k in tensors if k == "q4")
        pool = block_pool(2 * largest, rng, scale=0.01)
        n_pool_blocks = pool.size // QB
        for name, dims, kind in tensors:
            nb = nbytes(dims, kind)
            if kind == "q4":
                start = int(rng.integers(0, n_pool_blocks - nb // QB + 1)) * QB
                data = pool[start:start + nb]
            elif kind == "norm":
                data = np.ones(int(np.prod(dims)), dtype=np.float32)
            else:  # router: random, so that a prompt's tokens spread over the experts
                data = rng.standard_normal(int(np.prod(dims)), dtype=np.float32)
            w.write_tensor_data(data)
        fout.flush()
        end = fout.tell()
    w.close()
    return {
        "shape": shape,
        "file": str(path),
        "arch": s["arch"],
        "n_layer": s["n_layer"],
        "n_vocab": n_vocab,
        "tensor_bytes": total,
        "file_bytes": end,
        "sparse": sparse,
        "seconds": round(time.time() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shapes", default="moe30b,dense32b,dense3b")
    ap.add_argument("--layers", type=int, default=None, help="override every shape's layer count")
    ap.add_argument("--sparse", action="store_true", help="header only, file extended sparsely")
    ap.add_argument("--tokenizer", type=Path,
                    default=Path(__file__).resolve().parents[2] / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--seed", type=int, default=9)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for shape in a.shapes.split(","):
        if shape not in SHAPES:
            raise SystemExit(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
        print(json.dumps(write_one(shape, a.out, a.tokenizer, a.layers, a.sparse, a.seed)), flush=True)


if __name__ == "__main__":
    main()
