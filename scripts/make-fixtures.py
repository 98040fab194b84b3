#!/usr/bin/env python3
"""Regenerate the PyTorch fixtures under Tests/Fixtures (committed; tests read them, CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python scripts/make-fixtures.py

Each scaled-dot-product case is a folder Tests/Fixtures/sdpa/<name>/ with float64 inputs (q, k, v and,
when used, mask and bias) and the expected results:
  out.npy      torch.nn.functional.scaled_dot_product_attention in float64 (PyTorch's own masks:
               causal_lower_right for bottom-right causal, is_causal for top-left, boolean attn_mask
               for windows, key lengths and explicit masks; enable_gqa for grouped-query attention)
  weights.npy  softmax(scale * q @ k^T + bias, masked) in float64, dead rows 0
  lse.npy      logsumexp of the same scores, dead rows -inf
  do.npy, dq.npy, dk.npy, dv.npy (and dbias.npy)
               PyTorch autograd through scaled_dot_product_attention for the output gradient do.npy
The script checks that out == weights @ v before writing. manifest.json lists every case with the
mask specification the Swift tests rebuild from (so both sides build their masks independently).
MultiheadAttention cases (Tests/Fixtures/mha/<name>/) hold nn.MultiheadAttention's parameters,
inputs and outputs.
"""
import json
import math
import pathlib
import shutil
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

warnings.filterwarnings("ignore", message="Lower right causal bias")
ROOT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
torch.manual_seed(0)
rng = np.random.default_rng(20261122)


def save(folder, name, array):
    np.save(folder / f"{name}.npy", np.array(array, order="C"))   # ascontiguousarray would make 0-d arrays 1-d


def allowed_matrix(spec, b, nq, nk):
    """The structural mask (causal, window, key lengths) as a [B, 1, Nq, Nk] bool array."""
    i = np.arange(nq)[:, None]
    j = np.arange(nk)[None, :]
    allowed = np.ones((b, 1, nq, nk), dtype=bool)
    if spec.get("causal") == "bottomRight":
        allowed &= j <= i + nk - nq
    if spec.get("causal") == "topLeft":
        allowed &= j <= i
    if spec.get("window") is not None:
        left, right = spec["window"]
        d = i + nk - nq
        allowed &= (j >= d - left) & (j <= d + right)
    if spec.get("keyLengths") is not None:
        for batch, length in enumerate(spec["keyLengths"]):
            allowed[batch, :, :, length:] = False
    return allowed


def sdpa_case(name, shape, spec=None, scale=None, mask_shape=None, bias_shape=None, bias_neg_inf=False,
              rank=4, dead_mask_row=False):
    spec = dict(spec or {})
    b, hq, hkv, nq, nk, d, dv = shape
    q = torch.from_numpy(rng.standard_normal((b, hq, nq, d))).requires_grad_()
    k = torch.from_numpy(rng.standard_normal((b, hkv, nk, d))).requires_grad_()
    v = torch.from_numpy(rng.standard_normal((b, hkv, nk, dv))).requires_grad_()
    eff_scale = scale if scale is not None else 1 / math.sqrt(d)

    allowed = torch.from_numpy(allowed_matrix(spec, b, nq, nk)).expand(b, hq, nq, nk)
    bool_mask = None
    if mask_shape is not None:
        bool_mask = torch.from_numpy(rng.random(mask_shape) < 0.7)
        if dead_mask_row:
            bool_mask[..., 1, :] = False
        allowed = allowed & bool_mask.expand(b, hq, nq, nk)
    bias = None
    if bias_shape is not None:
        bias = torch.from_numpy(rng.standard_normal(bias_shape))
        if bias_neg_inf:
            bias[..., 0, :] = -math.inf          # query row 0 sees nothing through the bias alone
            bias[..., :, -1] = -math.inf         # the last key is hidden from everyone
        bias.requires_grad_()

    # Our semantics, computed directly in float64 (no gradients needed here).
    q, k, v = q.detach(), k.detach(), v.detach()
    bias_value = bias.detach() if bias is not None else None
    k_rep = k.repeat_interleave(hq // hkv, dim=1)
    v_rep = v.repeat_interleave(hq // hkv, dim=1)
    scores = (q @ k_rep.transpose(-1, -2)) * eff_scale
    if bias is not None:
        scores = scores + bias_value.expand(b, hq, nq, nk)
    scores = scores.masked_fill(~allowed, -math.inf)
    lse = torch.logsumexp(scores, dim=-1)
    weights = torch.exp(scores - lse[..., None]).nan_to_num(0.0)
    weights[torch.isinf(lse)] = 0.0
    expected = weights @ v_rep

    # PyTorch's own SDPA, with its own way of expressing each mask.
    attn_mask = None
    is_causal = False
    structural = {key: spec[key] for key in ("window", "keyLengths") if spec.get(key) is not None}
    if spec.get("causal") == "bottomRight" and not structural and bool_mask is None and bias is None:
        attn_mask = causal_lower_right(nq, nk)
    elif spec.get("causal") == "topLeft" and not structural and bool_mask is None and bias is None:
        is_causal = True
    else:
        as_bool = allowed
        if bias is not None:
            attn_mask = bias.expand(b, hq, nq, nk).masked_fill(~as_bool, -math.inf)
        elif spec or bool_mask is not None:
            attn_mask = as_bool
    q.requires_grad_()
    k.requires_grad_()
    v.requires_grad_()
    torch_out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=hq != hkv)
    assert torch.allclose(torch_out, expected, atol=1e-12, rtol=0), f"{name}: PyTorch disagrees with weights @ v"
    grad_output = torch.from_numpy(rng.standard_normal(tuple(torch_out.shape)))
    grads = torch.autograd.grad(torch_out, [q, k, v] + ([bias] if bias is not None else []), grad_output)
    for gradient in grads:
        assert torch.isfinite(gradient).all(), f"{name}: PyTorch gives non-finite gradients"
    torch_out = torch_out.detach()

    # Drop leading dimensions for the lower-rank cases.
    def view(x, kind):
        x = x.detach()
        if rank == 4:
            return x
        if rank == 3:
            return x[0]
        if rank == 2:
            return x[0, 0]
        return x[0, 0, 0] if kind == "q" else (x[0, 0] if kind in ("k", "v") else x[0, 0, 0])

    folder = ROOT / "sdpa" / name
    folder.mkdir(parents=True)
    save(folder, "q", view(q, "q").numpy())
    save(folder, "k", view(k, "k").numpy())
    save(folder, "v", view(v, "v").numpy())
    save(folder, "out", view(torch_out, "o").numpy())
    save(folder, "weights", view(weights, "w").numpy())
    save(folder, "lse", view(lse, "l").numpy())
    save(folder, "do", view(grad_output, "o").numpy())
    save(folder, "dq", view(grads[0], "q").numpy())
    save(folder, "dk", view(grads[1], "k").numpy())
    save(folder, "dv", view(grads[2], "v").numpy())
    if bool_mask is not None:
        save(folder, "mask", bool_mask.numpy())
    if bias is not None:
        save(folder, "bias", bias.detach().numpy())
        save(folder, "dbias", grads[3].numpy())
    dead = int(torch.isinf(lse).sum())
    return {"name": name, "scale": scale, "causal": spec.get("causal"), "window": spec.get("window"),
            "keyLengths": spec.get("keyLengths"), "mask": bool_mask is not None, "bias": bias is not None,
            "rank": rank, "deadRows": dead}


def mha_case(name, batch, nq, nk, embed, heads, kdim, vdim, causal=False, key_lengths=None):
    mha = torch.nn.MultiheadAttention(embed, heads, batch_first=True, kdim=kdim, vdim=vdim, dtype=torch.float64)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x = torch.from_numpy(rng.standard_normal((batch, nq, embed)))
    key = torch.from_numpy(rng.standard_normal((batch, nk, kdim))) if kdim != embed or nk != nq else x
    value = torch.from_numpy(rng.standard_normal((batch, nk, vdim))) if vdim != embed or nk != nq else x
    attn_mask = None
    if causal:   # MultiheadAttention's polarity is the opposite of ours: True = may NOT attend.
        attn_mask = torch.triu(torch.ones(nq, nk, dtype=torch.bool), diagonal=1)
    padding = None
    if key_lengths is not None:
        padding = torch.arange(nk)[None, :] >= torch.tensor(key_lengths)[:, None]
    out, weights = mha(x, key, value, attn_mask=attn_mask, key_padding_mask=padding,
                       need_weights=True, average_attn_weights=False)
    folder = ROOT / "mha" / name
    folder.mkdir(parents=True)
    if mha._qkv_same_embed_dim:
        wq, wk, wv = mha.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    for n, t in [("query_weight", wq), ("key_weight", wk), ("value_weight", wv), ("query_bias", bq),
                 ("key_bias", bk), ("value_bias", bv), ("output_weight", mha.out_proj.weight),
                 ("output_bias", mha.out_proj.bias), ("query", x), ("key", key), ("value", value),
                 ("out", out), ("weights", weights)]:
        save(folder, n, t.detach().numpy())
    return {"name": name, "embed": embed, "heads": heads, "kdim": kdim, "vdim": vdim, "causal": causal,
            "keyLengths": key_lengths}


def main():
    for sub in ("sdpa", "mha"):
        shutil.rmtree(ROOT / sub, ignore_errors=True)
    # shape = (B, Hq, Hkv, Nq, Nk, D, Dv)
    cases = [
        sdpa_case("plain", (2, 3, 3, 5, 7, 8, 8)),
        sdpa_case("value_dim_differs", (2, 2, 2, 5, 7, 8, 5)),
        sdpa_case("explicit_scale", (1, 2, 2, 4, 6, 8, 8), scale=0.3),
        sdpa_case("causal_bottom_right", (2, 2, 2, 5, 7, 8, 8), {"causal": "bottomRight"}),
        sdpa_case("causal_bottom_right_dead_rows", (1, 2, 2, 7, 4, 8, 6), {"causal": "bottomRight"}),
        sdpa_case("causal_top_left", (2, 2, 2, 5, 7, 8, 8), {"causal": "topLeft"}),
        sdpa_case("causal_top_left_more_queries", (1, 2, 2, 7, 4, 8, 8), {"causal": "topLeft"}),
        sdpa_case("causal_square", (1, 2, 2, 6, 6, 8, 8), {"causal": "bottomRight"}),
        sdpa_case("window", (1, 2, 2, 9, 9, 8, 8), {"window": [2, 1]}),
        sdpa_case("window_causal", (1, 2, 2, 6, 9, 8, 8), {"causal": "bottomRight", "window": [3, 0]}),
        sdpa_case("key_lengths", (3, 2, 2, 4, 7, 8, 8), {"keyLengths": [7, 3, 0]}),
        sdpa_case("bool_mask", (2, 2, 2, 5, 7, 8, 8), mask_shape=(2, 1, 5, 7), dead_mask_row=True),
        sdpa_case("bool_mask_broadcast", (2, 3, 3, 5, 7, 8, 8), mask_shape=(5, 7)),
        sdpa_case("bias", (2, 4, 4, 5, 7, 8, 8), bias_shape=(1, 4, 5, 7)),
        sdpa_case("bias_neg_inf", (1, 2, 2, 5, 7, 8, 8), bias_shape=(2, 5, 7), bias_neg_inf=True),
        sdpa_case("gqa_2", (2, 4, 2, 5, 7, 8, 8)),
        sdpa_case("gqa_4_causal", (1, 8, 2, 6, 6, 16, 8), {"causal": "bottomRight"}),
        sdpa_case("mqa", (1, 4, 1, 5, 7, 8, 8)),
        sdpa_case("everything", (2, 4, 2, 6, 9, 8, 5),
                  {"causal": "bottomRight", "window": [4, 0], "keyLengths": [9, 6]},
                  scale=0.5, mask_shape=(2, 1, 6, 9), bias_shape=(4, 6, 9)),
        sdpa_case("rank3", (1, 3, 3, 5, 7, 8, 8), rank=3),
        sdpa_case("rank2_causal", (1, 1, 1, 6, 6, 8, 8), {"causal": "bottomRight"}, rank=2),
        sdpa_case("single_query", (1, 1, 1, 1, 7, 8, 5), rank=1),
    ]
    (ROOT / "sdpa" / "manifest.json").write_text(json.dumps(cases, indent=1) + "\n")
    mha_cases = [
        mha_case("self_causal", 2, 5, 5, 8, 2, 8, 8, causal=True),
        mha_case("cross_padding", 2, 4, 6, 8, 4, 6, 5, key_lengths=[6, 3]),
    ]
    (ROOT / "mha" / "manifest.json").write_text(json.dumps(mha_cases, indent=1) + "\n")
    print(f"wrote {len(cases)} attention cases and {len(mha_cases)} multi-head cases under {ROOT}")


if __name__ == "__main__":
    main()
