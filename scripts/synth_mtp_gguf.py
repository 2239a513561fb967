#!/usr/bin/env python3
"""Tiny synthetic GGUFs with an MTP (nextn) layer, for testing llama.cpp's `draft-mtp` speculation.

No small real model has MTP layers, so this writes hand-built `glm4moe` models (the GLM-4.5
shape, which llama.cpp runs with one nextn layer) whose greedy output is known in advance:

  mtp-echo.gguf   the trunk maps token t to g(t), g a fixed cycle through the vocabulary's normal
                  tokens, whatever came before; the MTP head predicts g(next) = what the trunk will
                  say next, so every draft is accepted -- but only when it is given the trunk's true
                  hidden state h of the position before: with h = 0 (process() never ran) it always
                  guesses the token F ('!', id 17), with a stale h (an earlier position q's) the
                  token at q + 2: either way (almost) no draft is accepted
  mtp-mixed.gguf  the next token is g(t) when the previous token's "bit" is clear, g(sigma(t))
                  when it is set (sigma pairs up the tokens; 35 % of them have the bit), so the
                  trunk depends on context; the MTP head still predicts g(next), so about a third
                  of its guesses are wrong (llama-server, 3 drafts a step: 38-54 % of the drafts
                  accepted): the model for "output with MTP equals output without it, even when
                  guesses are rejected"
  mtp-deep.gguf   (only with --variants deep; not made by scripts/fetch-models.sh) mtp-echo's design
                  in a model shaped for speed: on the two files above the trunk costs no more than
                  the MTP head (the 49152 x 64 output head is most of both), so guessing can only
                  be slower than not; in a real MTP model (GLM-4.5-Air: 46 layers) a draft step
                  costs a few percent of a model step. Here the draft step (nextn layer + output
                  head) reads 8.9 % of the weight bytes a model step does (see Shape (deep))

Shape (echo, mixed): n_embd 64, 2 heads (and 2 KV heads) of 32, 2 trunk layers (dense FFN, 128) + 1
nextn layer (`glm4moe.block_count` 3, `nextn_predict_layers` 1, `leading_dense_block_count` 2),
context 4096, vocab 49152 with the tokenizer and chat template (chatml) of SmolLM2-135M-Instruct.
The nextn layer is an MoE layer (4 experts of 32, 2 used, 1 shared expert): llama.cpp's MTP graph
for glm4moe always runs `build_moe_ffn` and asserts `ffn_gate_inp`, so it can't be dense (the arch
needs expert_count > 0 anyway). token_embd and output are F16, the rest F32; 14.9 MB a file. Tensors
of the nextn layer (blk.2): the usual attention and MoE ones plus nextn.eh_proj, nextn.enorm,
nextn.hnorm and nextn.shared_head_norm (no nextn.embed_tokens / shared_head_head: llama.cpp then
uses token_embd / output).

Shape (deep): n_embd 256, 4 heads (and 4 KV heads) of 64, 32 trunk layers (dense FFN, 8192) + 1
nextn layer (8 experts of 2048, 3 used, 1 shared expert: active FFN 8192 wide, as a trunk layer's);
Q8_0 for every matrix but token_embd (F16), the router and the three whose exact values the design
needs (eh_proj and the attention output of layer 0 and of the nextn layer: F32); 279.6 MB, ~10 s to
write. Layer 0 is the echo trunk's layer 0; layers 1..31 are exact no-ops in value (attention output
and FFN down projection all 0, so the residual passes unchanged) but full-size random q/k/v and
gate/up weights that llama.cpp reads and multiplies every step. Weight bytes a token reads (printed
as `cost`): a trunk layer 6.97 MB, the trunk 223.2 MB, the output head 13.4 MB, the nextn layer
7.7 MB (experts counted by the share used): draft step / model step = 21.1 / 236.6 = 0.089.
The echo design carries over with the norm's scale S = sqrt(n_embd) = 16 for 8 and DELTA = 4 S;
256-dim orbit embeddings are more nearly orthogonal (dot <= 0.26), so the margins grow (logit 57
against <= 15 with the true h; F at 83 against 14 with h = 0).

How the weights make it work (written for n_embd 64, where S = 8; deep: S = 16, DELTA = 64, the
orbit in dims 0..253, u0 and w dims 254 and 255). e_t, token t's embedding, is a unit vector. mixed:
dims 0..61 a random direction (scaled), dim 62 +-0.1 (the bit), dim 63 0; 64-dim random unit vectors
are near-orthogonal (dot 1 against <= ~0.65). echo: dims 0..61 only, a rotation orbit along g
(e_g(t) = R e_t, R a rotation in 31 planes by angles 2 pi m_j / 49135 whose orbit is one cycle
through the 49135 normal tokens; dot <= 0.50), dims 62 (u0) and 63 (w) 0. All norms are RMS norms
with weight 1, so norm(x) = 8 x / |x| (eps 1e-5 aside).
  - output row g(t) = 4 e_t, so argmax(output . norm(h)) = g(t) when h is e_t (plus anything
    orthogonal), with > 0.99 of the probability. Control tokens' rows are 0 (never predicted); a
    control token's embedding is that of a normal token, so a prompt may end in one. echo: token
    F's row also has F_W = 6 along w (nothing in the trunk writes w, so the trunk never sees it).
  - echo trunk: layer 0's attention has v weight 0 and v bias (1, 0, ..), so it outputs W_o's
    column 0 = K_U0 u0 (K_U0 = 0.5) whatever the softmax weights; every other attention output and
    FFN down projection is 0, so the residual is e_t + K_U0 u0 and the exported h_nextn (after
    output_norm) is h(t) = 8 (e_t + K_U0 u0) / sqrt(1 + K_U0^2): u0 part c0 = 3.5777.
  - mixed trunk, layer 0: the attention is positional (q and k are constant biases whose product
    after RoPE peaks at distance 1; rope base 1.5 spreads the frequencies), v reads the bit and the
    output writes 0.5 * bit(previous) into dim 63. The FFN's gate reads dim 63 (silu(+-30): on or
    off) and its up projection reads T e_t, T swapping the two halves of dims 0..61; the embeddings
    come in sigma-pairs with T e_a = e_b (less the bit), so after a set bit the residual becomes
    e_t + 3 e_sigma(t) and the next token is g(sigma(t)). Layer 1 adds nothing.
  - mixed nextn: eh_proj = [I | 0] passes enorm(embed(next)) and drops hnorm(h); its attention
    output and expert down projections are 0, shared_head_norm is 1 and the head is `output`: it
    predicts g(next), whatever the context.
  - echo nextn (the head is given token x and h, the trunk's h_nextn one position before x; in a
    draft, x = g(t) for h = h(t)): eh_proj = [I | H], its embedding half the identity (8 e_x);
    H maps hnorm(h)'s dims 0..61 through H_GAIN sqrt(1 + K_U0^2) R (h(t) -> 3 * 8 e_g(t)) and its
    u0 part onto -DELTA / c0 w (DELTA = 32, weight -8.9443). The attention (v weight 0, v bias
    (1, 0, ..)) adds DELTA w + K_MTP u0, K_MTP = 8 (1 + H_GAIN) K_U0 = 16; experts add 0. So
      true h:  residual 8 e_x + 24 e_g(t) + 16 u0 + (DELTA - DELTA) w = 32 (e_x + K_U0 u0) -> g(x)
               (and the head's h_nextn equals the trunk's h(x), so chained draft steps, which feed
               it back as h, work the same way)
      h = 0:   residual 8 e_x + 32 w + 16 u0: F's logit ~43 against g(x)'s ~7 -> F
      stale h = h(s), s != t: residual 8 e_x + 24 e_g(s) + 16 u0 -> g(g(s)) != g(x)
    The head's attention reads nothing from the MTP KV cache (v is constant), so only h matters.

  synth_mtp_gguf.py --out DIR [--variants echo,mixed|deep] [--tokenizer SmolLM2.gguf] [--check]

--check also runs a numpy reference of the trunk and the MTP head (float64, from the tensors as
written) on a few random prompts and prints the MTP guesses' hit rate (first draft step, and
chained steps 2-3 with the head's own h_nextn), the smallest relative gap between the two best
logits (no near-ties: batch and single-token decoding agree), the smallest top-token probability,
whether every token follows the rule above, and the head's hit rate with a wrong h: h = 0, h one
position stale, h of the prompt's last position (never refreshed) -- echo: 0, with the share of
h = 0 guesses that are F, the margins there and `h_flip`, one step's residual w / u0 components
and guess with the true h and with h = 0. Prints one JSON line per file. Deterministic: the same
files byte for byte on every run (fixed seeds); mtp-mixed.gguf is unchanged by the echo h design,
and both echo and mixed by the deep variant. The reference skips an attention or FFN whose output
projection is all 0 (it adds exactly 0), so deep's 31 no-op layers cost it nothing: its --check takes
~25 s (the tensors are dequantized from the Q8_0 bytes as written).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# scripts/gpu/synth-gguf.py has the tokenizer copy (every tokenizer.* key, chat template included)
_spec = importlib.util.spec_from_file_location("synth_gguf", ROOT / "scripts" / "gpu" / "synth-gguf.py")
_synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_synth)
gguf = _synth.gguf
copy_tokenizer = _synth.copy_tokenizer

ARCH = "glm4moe"
# The shape of the model being built (use_shape() sets these per variant; these are "tiny")
N_EMBD = 64
N_HEAD = 2
HEAD_DIM = 32
N_TRUNK = 2  # trunk layers; blk.N_TRUNK is the nextn layer
N_FF = 128
N_EXPERT, N_EXPERT_USED, N_FF_EXP, N_EXPERT_SHARED = 4, 2, 32, 1
QUANT = False  # deep: the big matrices in Q8_0
CTX = 4096
ROPE_BASE = 1.5  # rotary frequencies 1 .. 0.68 rad: the positional score below peaks sharply at 1
RMS_EPS = 1e-5
QK_SCALE = 20.0  # |q_i| |k_i| per rotary pair: the previous token's score leads by >= ~17 (softmax units)
N_U = N_EMBD - 2  # embedding dims: 0..61 a random direction, 62 the token's bit, 63 (mixed) the previous token's
BIT = 0.1         # weight of the bit in a token's (unit) embedding
PREV = 0.5        # dim 63 of the mixed model's residual after layer 0's attention: PREV * bit(previous)
GATE = 30.0       # silu(+-GATE): an on/off switch (silu(-30) = -3e-12)
PULL = 3.0        # weight of e_sigma(t) added to the residual when the previous token's bit is set
OUT_SCALE = 4.0   # output rows are OUT_SCALE * e_t: the best logit is ~32, the runner-up <= ~21, so the
                  # softmax puts > 0.99 on the top token (draft confidence: a p_min cut keeps the drafts)
# echo only: the MTP head needs the trunk's hidden state h (see the docstring)
U0, W = N_EMBD - 2, N_EMBD - 1  # reserved dims: no token embedding (or output row but F's) uses them
S = 8.0           # sqrt(N_EMBD): an RMS-normed vector's length (norm(x) = S x / |x|)
K_U0 = 0.5        # the trunk adds K_U0 * u0 to the residual at every position (layer 0's attention)
H_GAIN = 3.0      # eh_proj's h half writes H_GAIN * S e_g(t) for h = h(t): 3x the embedding half's S e_next
DELTA = 4 * S     # the MTP attention adds DELTA * w; eh_proj cancels it with -DELTA * w from the true h
F_W = 6.0         # token F's output row gets F_W * w on top: with DELTA * w left over, F wins (logit ~42)

SHAPES = {
    "tiny": dict(n_embd=64, n_head=2, head_dim=32, n_trunk=2, n_ff=128, moe=(4, 2, 32, 1), quant=False),
    # deep: a trunk whose cost dominates as a real MTP model's does (GLM-4.5-Air: 46 layers; an MTP
    # draft step, one layer + the output head, costs a few percent of a model step). Layer 0 does
    # the echo trunk's work, layers 1..31 are exact no-ops in value (attention output and FFN
    # down projection 0) but full-size weights llama.cpp reads every step; the nextn layer's
    # active FFN (3 experts + 1 shared of 2048) is one trunk layer's 8192
    "deep": dict(n_embd=256, n_head=4, head_dim=64, n_trunk=32, n_ff=8192, moe=(8, 3, 2048, 1), quant=True),
}

VARIANTS = {
    # p_bit: share of normal tokens whose bit is set (mixed: after such a token, the next token is
    # g(sigma(t)), not g(t), so roughly that share of the MTP guesses is wrong)
    "echo": dict(file="mtp-echo.gguf", mixed=False, p_bit=0.35, seed=11),
    "mixed": dict(file="mtp-mixed.gguf", mixed=True, p_bit=0.35, seed=12),
    "deep": dict(file="mtp-deep.gguf", mixed=False, p_bit=0.35, seed=13, shape="deep"),
}
DEFAULT_VARIANTS = "echo,mixed"  # what scripts/fetch-models.sh makes; deep only when asked for


def use_shape(name: str) -> None:
    """Sets the module's shape constants (N_EMBD, N_TRUNK, ...; the echo design's U0, W, S and
    DELTA follow N_EMBD) for a variant's shape."""
    global N_EMBD, N_HEAD, HEAD_DIM, N_TRUNK, N_FF, N_EXPERT, N_EXPERT_USED, N_FF_EXP, N_EXPERT_SHARED
    global QUANT, N_U, U0, W, S, DELTA
    sh = SHAPES[name]
    N_EMBD, N_HEAD, HEAD_DIM, N_TRUNK, N_FF = sh["n_embd"], sh["n_head"], sh["head_dim"], sh["n_trunk"], sh["n_ff"]
    N_EXPERT, N_EXPERT_USED, N_FF_EXP, N_EXPERT_SHARED = sh["moe"]
    QUANT = sh["quant"]
    N_U = N_EMBD - 2
    U0, W = N_EMBD - 2, N_EMBD - 1
    S = float(np.sqrt(N_EMBD))
    DELTA = 4 * S


def token_types(reader) -> np.ndarray:
    return np.array(reader.fields["tokenizer.ggml.token_type"].contents(), dtype=np.int32)


def swap(u: np.ndarray) -> np.ndarray:
    """T: swaps the two halves of the 62 direction dims (an orthogonal involution)."""
    h = N_U // 2
    return np.concatenate([u[..., h:N_U], u[..., :h]], axis=-1)


def orbit(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in the N_U direction dims, u_k = R^k u_0, and the rotation R (31 planes
    (2j, 2j + 1), angles 2 pi m_j / n, so R^n = I: the orbit is one cycle). u_k . u_l depends only
    on k - l; <= ~0.5 for k != l with these m_j."""
    rng = np.random.default_rng(seed)
    half = N_U // 2
    m = rng.integers(1, n, half)
    phi = rng.uniform(0.0, 2 * np.pi, half)
    ang = 2 * np.pi * ((np.arange(n)[:, None] * m[None, :]) % n) / n + phi
    u = np.empty((n, N_U))
    u[:, 0::2], u[:, 1::2] = np.cos(ang), np.sin(ang)
    u /= np.sqrt(half)
    R = np.zeros((N_U, N_U))
    c, s = np.cos(2 * np.pi * m / n), np.sin(2 * np.pi * m / n)
    i = 2 * np.arange(half)
    R[i, i], R[i, i + 1], R[i + 1, i], R[i + 1, i + 1] = c, -s, s, c
    return u, R


def true_h_u0() -> float:
    """u0 component of hnorm(h) for the trunk's true h = output_norm(e + K_U0 u0), |e| = 1 (eps
    included): what eh_proj's u0 -> w weight divides DELTA by."""
    x = np.zeros(N_EMBD)
    x[0], x[U0] = 1.0, K_U0
    return float(_norm(_norm(x, 1.0), 1.0)[U0])


def rope_qk() -> tuple[np.ndarray, np.ndarray]:
    """Constant q and k (one head, NeoX pair layout (i, i + 16)) whose score after RoPE is
    QK_SCALE * sum_i cos((d - 1) theta_i) for query-key distance d: largest at d = 1."""
    half = HEAD_DIM // 2
    theta = ROPE_BASE ** (-2.0 * np.arange(half) / HEAD_DIM)
    a = np.sqrt(QK_SCALE)
    q = np.zeros(HEAD_DIM)
    k = np.zeros(HEAD_DIM)
    q[:half] = a
    k[:half], k[half:] = a * np.cos(theta), a * np.sin(theta)
    return q, k


def build(variant: str, types: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Tensors by name (numpy layout: ggml dims reversed, y = W @ x; a Q8_0 one as its bytes, one
    row of blocks per matrix row) and the maps g, sigma, bit, and qtypes (the Q8_0 tensors)."""
    v = VARIANTS[variant]
    use_shape(v.get("shape", "tiny"))
    rng = np.random.default_rng(v["seed"])
    n_vocab = len(types)
    normal = np.flatnonzero(types == 1)  # normal tokens: the only ones ever predicted
    special = np.flatnonzero(types != 1)

    # Embeddings in sigma-pairs: e_b's direction is T(e_a's), so T maps every embedding to another
    # one (T e_t = e_sigma(t)); both of a pair have the same bit. An odd one out is its own pair.
    shuffled = rng.permutation(normal)
    n_pairs = len(shuffled) // 2
    a_ids, b_ids = shuffled[:n_pairs], shuffled[n_pairs:2 * n_pairs]
    sigma = np.arange(n_vocab)
    sigma[a_ids], sigma[b_ids] = b_ids, a_ids
    u = np.zeros((n_vocab, N_U))
    u[a_ids] = rng.standard_normal((n_pairs, N_U))
    u[b_ids] = swap(u[a_ids])
    if len(shuffled) % 2:
        x = rng.standard_normal(N_U // 2)
        u[shuffled[-1]] = np.concatenate([x, x])
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-30)
    bit = np.zeros(n_vocab, dtype=bool)
    bit[a_ids] = bit[b_ids] = rng.random(n_pairs) < v["p_bit"]
    emb = np.zeros((n_vocab, N_EMBD))
    emb[:, :N_U] = np.sqrt(1 - BIT * BIT) * u
    emb[:, N_U] = np.where(bit, BIT, -BIT)
    # a control token reads like a normal one (a prompt may end in one)
    alias = normal[: len(special)]
    emb[special], bit[special], sigma[special] = emb[alias], bit[alias], sigma[alias]
    order = rng.permutation(normal)  # g: one cycle through every normal token
    g = np.arange(n_vocab)
    g[order] = np.roll(order, -1)
    g[special] = g[alias]
    f_tok, R = -1, None
    if not v["mixed"]:
        # echo: the embeddings are a rotation orbit along g (e_g(t) = R e_t), so a linear map can
        # read "the token after h's" off h; dims U0 and W stay 0 (no bit: echo ignores it)
        u_orb, R = orbit(len(order), v["seed"] + 100)
        emb[:] = 0.0
        emb[order, :N_U] = u_orb
        emb[special] = emb[alias]
        f_tok = int(normal[0])  # F: what the MTP head guesses without (the u0 part of) the true h
    emb = emb.astype(np.float16)
    out = np.zeros((n_vocab, N_EMBD), dtype=np.float16)
    out[g[order]] = OUT_SCALE * emb[order]  # output row g(t) = e_t (scaled); control tokens' rows stay 0
    if f_tok >= 0:
        out[f_tok, W] = F_W

    e, hd = N_EMBD, HEAD_DIM
    small = lambda *shape: rng.standard_normal(shape) * 0.05  # weights whose output is zeroed later
    if QUANT:  # deep: ~0.5 G of them; float32 draws (the tiny files keep their float64 stream)
        small = lambda *shape: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
    t: dict[str, np.ndarray] = {"token_embd.weight": emb}
    q, k = rope_qk()
    for i in range(N_TRUNK + 1):
        b = f"blk.{i}."
        t[b + "attn_norm.weight"] = np.ones(e)
        t[b + "attn_q.weight"] = small(N_HEAD * hd, e)
        t[b + "attn_k.weight"] = small(N_HEAD * hd, e)
        t[b + "attn_v.weight"] = small(N_HEAD * hd, e)
        t[b + "attn_q.bias"] = np.zeros(N_HEAD * hd)
        t[b + "attn_k.bias"] = np.zeros(N_HEAD * hd)
        t[b + "attn_v.bias"] = np.zeros(N_HEAD * hd)
        t[b + "attn_output.weight"] = np.zeros((e, N_HEAD * hd))
        t[b + "post_attention_norm.weight"] = np.ones(e)
        if i < N_TRUNK:
            t[b + "ffn_gate.weight"] = small(N_FF, e)
            t[b + "ffn_up.weight"] = small(N_FF, e)
            t[b + "ffn_down.weight"] = np.zeros((e, N_FF))
        if i == 0 and v["mixed"]:
            # attention: positional, to the previous token (q, k constant biases); v = its bit
            # (normed input dim 62 = 8 * +-BIT); out: PREV * bit(previous) into residual dim 63
            t[b + "attn_q.weight"] = np.zeros((N_HEAD * hd, e))
            t[b + "attn_k.weight"] = np.zeros((N_HEAD * hd, e))
            t[b + "attn_q.bias"] = np.tile(q, N_HEAD)
            t[b + "attn_k.bias"] = np.tile(k, N_HEAD)
            t[b + "attn_v.weight"] = np.zeros((N_HEAD * hd, e))
            t[b + "attn_v.weight"][0, N_U] = 1.0
            t[b + "attn_output.weight"][N_EMBD - 1, 0] = PREV / (8 * BIT)
            # FFN: the normed input is z = 8 x / sqrt(1 + PREV^2); neurons 0..61 compute
            # silu(gate) * up with gate = +-GATE (the previous token's bit) and up = T z, so the
            # down projection adds PULL * e_sigma(t) (less its bit) when the previous bit is set
            s = 8.0 / np.sqrt(1.0 + PREV * PREV)
            gate = np.zeros((N_FF, e))
            gate[:N_U, N_EMBD - 1] = GATE / (s * PREV)
            up = np.zeros((N_FF, e))
            up[:N_U, :N_U] = swap(np.eye(N_U))
            down = np.zeros((e, N_FF))
            down[:N_U, :N_U] = np.eye(N_U) * PULL / (GATE * s)
            t[b + "ffn_gate.weight"], t[b + "ffn_up.weight"], t[b + "ffn_down.weight"] = gate, up, down
        if not v["mixed"] and i in (0, N_TRUNK):
            # a constant through the attention: v = its bias (weight 0) = (1, 0, ...), whatever the
            # softmax weights; the output projection's column 0 writes it. Trunk layer 0: K_U0 u0.
            # nextn: DELTA w + K_MTP u0, K_MTP = S (1 + H_GAIN) K_U0 (its residual is S (1 + H_GAIN)
            # e_next with the true h, so the head's own h_nextn, which chained draft steps feed
            # back as h, has the trunk's u0 share and cancels the same way)
            t[b + "attn_v.weight"] = np.zeros((N_HEAD * hd, e))
            t[b + "attn_v.bias"][0] = 1.0
            t[b + "attn_output.weight"][U0, 0] = K_U0 if i == 0 else S * (1 + H_GAIN) * K_U0
            if i == N_TRUNK:
                t[b + "attn_output.weight"][W, 0] = DELTA
        if i == N_TRUNK:
            t[b + "ffn_gate_inp.weight"] = small(N_EXPERT, e)
            t[b + "exp_probs_b.bias"] = np.zeros(N_EXPERT)
            t[b + "ffn_gate_exps.weight"] = small(N_EXPERT, N_FF_EXP, e)
            t[b + "ffn_up_exps.weight"] = small(N_EXPERT, N_FF_EXP, e)
            t[b + "ffn_down_exps.weight"] = np.zeros((N_EXPERT, e, N_FF_EXP))
            sh = N_FF_EXP * N_EXPERT_SHARED
            t[b + "ffn_gate_shexp.weight"] = small(sh, e)
            t[b + "ffn_up_shexp.weight"] = small(sh, e)
            t[b + "ffn_down_shexp.weight"] = np.zeros((e, sh))
            hproj = np.zeros((e, e))
            if not v["mixed"]:
                # h half: hnorm(h(t)) = S (e_t + K_U0 u0) / sqrt(1 + K_U0^2); its e_t part goes
                # through R (-> e_g(t), the next token's embedding) times H_GAIN sqrt(1 + K_U0^2),
                # its u0 part onto -DELTA w (cancelling the attention's DELTA w exactly)
                hproj[:N_U, :N_U] = H_GAIN * np.sqrt(1 + K_U0 * K_U0) * R
                hproj[W, U0] = -DELTA / true_h_u0()
            t[b + "nextn.eh_proj.weight"] = np.concatenate([np.eye(e), hproj], axis=1)
            t[b + "nextn.enorm.weight"] = np.ones(e)
            t[b + "nextn.hnorm.weight"] = np.ones(e)
            t[b + "nextn.shared_head_norm.weight"] = np.ones(e)
    t["output_norm.weight"] = np.ones(e)
    t["output.weight"] = out
    qtypes = {}
    for name, a in t.items():
        if QUANT and is_quantized(name):
            t[name] = gguf.quants.quantize(a.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            qtypes[name] = gguf.GGMLQuantizationType.Q8_0
        elif a.dtype != np.float16:
            t[name] = a.astype(np.float32)
    return t, dict(g=g, sigma=sigma, bit=bit, normal=normal, f_tok=f_tok, qtypes=qtypes)


def is_quantized(name: str) -> bool:
    """deep: the matrices in Q8_0 -- every one but token_embd (F16), the router (F32) and the
    ones whose exact values the echo design needs (F32): eh_proj, and the attention output of
    trunk layer 0 and the nextn layer (their K_U0 u0, DELTA w and K_MTP u0). output.weight is
    Q8_0 too (as in a quantized real model; the logit gaps are ~40, its rounding ~0.01)."""
    if not name.endswith(".weight") or name in ("token_embd.weight", "output_norm.weight"):
        return False
    if "norm" in name or "ffn_gate_inp" in name or "nextn.eh_proj" in name:
        return False
    return name not in ("blk.0.attn_output.weight", f"blk.{N_TRUNK}.attn_output.weight")


def write(path: Path, variant: str, tensors: dict[str, np.ndarray], qtypes: dict, tokenizer) -> int:
    w = gguf.GGUFWriter(path, ARCH)
    w.add_name(f"synthetic MTP test model ({variant})")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtypes else gguf.LlamaFileType.MOSTLY_F16)
    w.add_block_count(N_TRUNK + 1)
    w.add_nextn_predict_layers(1)
    w.add_leading_dense_block_count(N_TRUNK)
    w.add_context_length(CTX)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(N_EXPERT_USED)
    w.add_expert_feed_forward_length(N_FF_EXP)
    w.add_expert_shared_count(N_EXPERT_SHARED)
    w.add_expert_weights_scale(1.0)
    w.add_expert_weights_norm(True)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    n_vocab = copy_tokenizer(w, tokenizer)
    assert n_vocab == tensors["token_embd.weight"].shape[0], n_vocab
    for name, a in tensors.items():
        w.add_tensor(name, a, raw_dtype=qtypes.get(name))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.stat().st_size


# --- numpy reference (float64, from the tensors as written) --------------------------------

def _norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + RMS_EPS) * w


def _rope_neox(x: np.ndarray) -> np.ndarray:  # x: [pos, head, HEAD_DIM]
    half = HEAD_DIM // 2
    ang = np.arange(x.shape[0])[:, None] * ROPE_BASE ** (-2.0 * np.arange(half) / HEAD_DIM)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., :half], x[..., half:]
    return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)


class Tensors:
    """The tensors as written, float64, dequantized on first use; `zero(name)`: every weight 0."""

    def __init__(self, raw: dict[str, np.ndarray], qtypes: dict):
        self.raw, self.qtypes, self.cache = raw, qtypes, {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.cache:
            a = self.raw[name]
            if name in self.qtypes:
                a = gguf.quants.dequantize(a, self.qtypes[name])
            self.cache[name] = a.astype(np.float64)
        return self.cache[name]

    def zero(self, name: str) -> bool:
        return not self.raw[name].any()  # Q8_0: all bytes 0 <=> every block's scale and values 0


def trunk(T: Tensors, toks: list[int]) -> np.ndarray:
    """The trunk's normed final hidden state (h_nextn) at every position. An attention whose
    output projection is all 0, or an FFN whose down projection is, adds exactly 0 to the
    residual, so it is skipped (deep: layers 1..31 entirely)."""
    x = T["token_embd.weight"][toks]
    n = len(toks)
    mask = np.tril(np.ones((n, n), dtype=bool))
    for i in range(N_TRUNK):
        b = f"blk.{i}."
        if T.zero(b + "attn_output.weight") and T.zero(b + "ffn_down.weight"):
            continue
        xn = _norm(x, T[b + "attn_norm.weight"])
        qkv = [(xn @ T[b + f"attn_{c}.weight"].T + T[b + f"attn_{c}.bias"]).reshape(n, N_HEAD, HEAD_DIM)
               for c in "qkv"]
        q, k = _rope_neox(qkv[0]), _rope_neox(qkv[1])
        sc = np.einsum("phd,jhd->hpj", q, k) / np.sqrt(HEAD_DIM)
        sc = np.where(mask, sc, -np.inf)
        a = np.exp(sc - sc.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        att = np.einsum("hpj,jhd->phd", a, qkv[2]).reshape(n, -1)
        x = x + att @ T[b + "attn_output.weight"].T
        if T.zero(b + "ffn_down.weight"):
            continue
        z = _norm(x, T[b + "post_attention_norm.weight"])
        gt = z @ T[b + "ffn_gate.weight"].T
        x = x + (gt / (1 + np.exp(-gt)) * (z @ T[b + "ffn_up.weight"].T)) @ T[b + "ffn_down.weight"].T
    return _norm(x, T["output_norm.weight"])


def mtp_step(T: Tensors, token: int, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nextn head on (token, h = the hidden state of the position before): its logits for the
    token after `token` and its own h_nextn (what a chained draft step feeds back as h). Its
    attention's v weight is 0, so the attention output is attn_output @ v_bias whatever the
    softmax weights (whatever the MTP KV cache holds; mixed: attn_output is 0); the experts'
    outputs are 0 (both checked)."""
    b = f"blk.{N_TRUNK}."
    for name in ("ffn_down_exps.weight", "ffn_down_shexp.weight"):
        assert T.zero(b + name), name
    assert T.zero(b + "attn_v.weight") or T.zero(b + "attn_output.weight")
    cat = np.concatenate([_norm(T["token_embd.weight"][token], T[b + "nextn.enorm.weight"]),
                          _norm(h, T[b + "nextn.hnorm.weight"])])
    cur = T[b + "nextn.eh_proj.weight"] @ cat
    cur = cur + T[b + "attn_output.weight"] @ T[b + "attn_v.bias"]
    h_out = _norm(cur, T[b + "nextn.shared_head_norm.weight"])
    return T["output.weight"] @ h_out, h_out


def _gap_p(lg: np.ndarray) -> tuple[float, float]:
    """(best - second best) / best, and the top token's softmax probability."""
    top2 = np.sort(lg)[-2:]
    return (top2[1] - top2[0]) / top2[1], 1.0 / np.exp(lg - lg.max()).sum()


def reference(T: Tensors, prompt: list[int], n_predict: int, n_chain: int = 3) -> dict:
    """Greedy continuation of `prompt`; per generated token after the first, whether the MTP head
    (given the token before it and the trunk's state before that) guessed it; the smallest gap
    between the two best logits (trunk and MTP), relative to the best; the smallest top-token
    probability (softmax over the whole vocabulary). Also the head's guesses with the wrong h:
    h = 0 (never processed), h one position stale, h of the prompt's last position (never
    refreshed); and chained draft steps 2..n_chain (the head's own h_nextn fed back as h), checked
    against the tokens that follow."""
    toks = list(prompt)
    hs = []  # trunk's h_nextn at every position of the final sequence (computed incrementally)
    hits, gaps, probs = [], [], []
    wrong = dict(h0=[], stale=[], unrefreshed=[])
    wrong_guess = dict(h0=[], stale=[], unrefreshed=[])
    wrong_gaps, wrong_probs = [], []
    steps = []  # (token, h) pairs at which the head drafts: verified later against toks
    for _ in range(n_predict):
        h = trunk(T, toks)
        lg = T["output.weight"] @ h[-1]
        nxt = int(np.argmax(lg))
        gp = _gap_p(lg)
        gaps.append(gp[0])
        probs.append(gp[1])
        if len(toks) > len(prompt):
            ml, _ = mtp_step(T, toks[-1], h[-2])
            gp = _gap_p(ml)
            gaps.append(gp[0])
            probs.append(gp[1])
            hits.append(int(np.argmax(ml)) == nxt)
            for kind, hh in (("h0", np.zeros(N_EMBD)), ("stale", h[-3]), ("unrefreshed", h[len(prompt) - 1])):
                if kind == "unrefreshed" and len(toks) == len(prompt) + 1:
                    continue  # that is the true h there
                wl, _ = mtp_step(T, toks[-1], hh)
                gp = _gap_p(wl)
                wrong_gaps.append(gp[0])
                wrong_probs.append(gp[1])
                wrong[kind].append(int(np.argmax(wl)) == nxt)
                wrong_guess[kind].append(int(np.argmax(wl)))
            steps.append(len(toks) - 1)
        toks.append(nxt)
        hs = h
    # chained draft steps, as llama.cpp's draft(): step 1 (token x_{p+1}, trunk h_p), step i + 1
    # (the head's guess, the head's h_nextn of step i)
    chain_hits = []
    hs = trunk(T, toks)
    for p in steps:
        tok, hh = toks[p + 1], hs[p]
        for i in range(n_chain):
            ml, hh = mtp_step(T, tok, hh)
            tok = int(np.argmax(ml))
            if p + 2 + i >= len(toks):
                break
            if i > 0:
                chain_hits.append(tok == toks[p + 2 + i])
            if tok != toks[p + 2 + i]:
                break
    return dict(tokens=toks[len(prompt):], mtp_hits=hits, min_rel_gap=float(min(gaps)),
                min_top_p=float(min(probs)), chain_hits=chain_hits, wrong_hits=wrong,
                wrong_guess=wrong_guess, wrong_min_rel_gap=float(min(wrong_gaps)),
                wrong_min_top_p=float(min(wrong_probs)))


def h_flip(T: Tensors, maps: dict) -> dict:
    """The design's arithmetic on one step, float64 from the tensors as written: the nextn
    residual's w and u0 components and the head's guess, with the true h and with h = 0."""
    g, t0 = maps["g"], int(maps["normal"][5])
    x1 = int(g[t0])  # prompt [t0]: the trunk says x1 = g(t0); the head drafts the token after x1
    h = trunk(T, [t0])[-1]
    b = f"blk.{N_TRUNK}."
    out = dict(t0=t0, x1=x1, want=int(g[x1]), F=maps["f_tok"], c0=round(true_h_u0(), 6),
               eh_proj_u0_to_w=round(float(T[b + "nextn.eh_proj.weight"][W, N_EMBD + U0]), 6))
    for kind, hh in (("true_h", h), ("h0", np.zeros(N_EMBD))):
        ml, _ = mtp_step(T, x1, hh)
        pre = T[b + "nextn.eh_proj.weight"] @ np.concatenate(
            [_norm(T["token_embd.weight"][x1], 1.0), _norm(hh, 1.0)]) + \
            T[b + "attn_output.weight"] @ T[b + "attn_v.bias"]
        top = np.argsort(ml)[::-1][:2]
        out[kind] = dict(h_u0=round(float(hh[U0]), 6), resid_w=round(float(pre[W]), 6),
                         resid_u0=round(float(pre[U0]), 4), guess=int(top[0]),
                         logit=round(float(ml[top[0]]), 2), runner_up=round(float(ml[top[1]]), 2))
    return out


def cost(tensors: dict[str, np.ndarray]) -> dict:
    """Weight bytes one token reads (the CPU's decode is bound by them): a model step (the trunk's
    layers + output head) and an MTP draft step (the nextn layer, its experts by the share used,
    + output head; token_embd is a row lookup). deep: the draft step is ~9 % of a model step."""
    b = f"blk.{N_TRUNK}."
    trunk_b = sum(a.nbytes for k, a in tensors.items()
                  if k.startswith("blk.") and not k.startswith(b))
    head = tensors["output.weight"].nbytes + tensors["output_norm.weight"].nbytes
    mtp = sum(a.nbytes * (N_EXPERT_USED / N_EXPERT if "_exps." in k else 1)
              for k, a in tensors.items() if k.startswith(b))
    return dict(trunk_layer_mb=round(trunk_b / N_TRUNK / 1e6, 2), trunk_mb=round(trunk_b / 1e6, 1),
                output_head_mb=round(head / 1e6, 1), mtp_layer_mb=round(mtp / 1e6, 2),
                draft_over_model_step=round((mtp + head) / (trunk_b + head), 3))


def check(variant: str, tensors: dict, maps: dict) -> dict:
    T = Tensors(tensors, maps["qtypes"])
    rng = np.random.default_rng(1)
    hits, gaps, probs, follows, chain = [], [], [], [], []
    wrong = dict(h0=[], stale=[], unrefreshed=[])
    f_share, wgaps, wprobs = [], [], []
    for _ in range(3):
        prompt = [int(t) for t in rng.choice(maps["normal"], 16)]
        r = reference(T, prompt, 48)
        hits += r["mtp_hits"]
        chain += r["chain_hits"]
        gaps.append(r["min_rel_gap"])
        probs.append(r["min_top_p"])
        for k in wrong:
            wrong[k] += r["wrong_hits"][k]
        f_share += [t == maps["f_tok"] for t in r["wrong_guess"]["h0"]]
        wgaps.append(r["wrong_min_rel_gap"])
        wprobs.append(r["wrong_min_top_p"])
        toks = prompt + r["tokens"]
        g, sg, bit = maps["g"], maps["sigma"], maps["bit"]
        for p in range(len(prompt), len(toks)):  # the design: g(t), or g(sigma(t)) after a set bit
            want = g[sg[toks[p - 1]]] if variant == "mixed" and bit[toks[p - 2]] else g[toks[p - 1]]
            follows.append(toks[p] == want)
    res = dict(mtp_hit_rate=round(float(np.mean(hits)), 3),
               mtp_chain_hit_rate=round(float(np.mean(chain)), 3) if chain else None,
               min_rel_logit_gap=round(min(gaps), 3), min_top_p=round(min(probs), 4),
               follows_design=bool(all(follows)))
    # the head with the wrong h: hit rates (echo: ~0, it needs the true h; mixed: unchanged)
    res.update({f"mtp_hit_rate_{k}": round(float(np.mean(v)), 3) for k, v in wrong.items()})
    if variant != "mixed":
        res.update(h0_guess_is_F=round(float(np.mean(f_share)), 3),
                   wrong_h_min_rel_logit_gap=round(min(wgaps), 3), wrong_h_min_top_p=round(min(wprobs), 4))
        u = T["token_embd.weight"][maps["normal"], :N_U]  # orbit: a dot depends on the index difference
        d = u[:64] @ u.T
        d[np.arange(64), np.arange(64)] = -1.0
        res["max_embd_dot"] = round(float(d.max()), 3)
        res["h_flip"] = h_flip(T, maps)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--check", action="store_true", help="also run the numpy reference")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    tok = gguf.GGUFReader(a.tokenizer)
    types = token_types(tok)
    for variant in a.variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        t0 = time.time()
        tensors, maps = build(variant, types)
        path = a.out / VARIANTS[variant]["file"]
        tmp = path.with_name(path.name + ".tmp")
        size = write(tmp, variant, tensors, maps["qtypes"], tok)
        tmp.replace(path)
        line = dict(variant=variant, file=str(path), bytes=size, seconds=round(time.time() - t0, 2))
        line.update(cost(tensors))
        if a.check:
            line.update(check(variant, tensors, maps))
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
