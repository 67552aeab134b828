r"""A tiny random-weight llama model in GGUF format, for tests and benchmarks against a real llama.cpp server.

:func:`write_tiny_llama` writes a 2-layer, 64-wide llama with a byte-level
SentencePiece vocabulary (``<unk>``, ``<s>``, ``</s>`` and the 256 byte tokens): about
0.5 MB, loads in well under a second and decodes a hundred or more tokens per second
on one core. The weights are random, but the output layer is *biased* so that the
model behaves usefully for collection tests:

* dimension 0 of every embedding is a large constant that no layer reads or writes
  (a "bias channel"); it dominates the final RMS norm, so ``output.weight[:, 0]``
  acts as a per-token logit bias, and the layer norms' gains undo its shrinking of
  the other dimensions so that attention still depends on the context;
* printable ASCII is preferred, digits most of all, bytes outside ASCII and the
  special tokens are practically never sampled, end-of-sequence is rare (so some
  branches stop on their own);
* ``}`` follows the contexts that would favour ``5``, so a greedy probe after
  ``\boxed{`` writes a few digits and sometimes closes the brace (an answer) and
  sometimes not (``ERR``).

Needs the ``gguf`` package (in the ``test`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Token ids of the special tokens; byte ``x`` is token ``3 + x``.
UNK, BOS, EOS = 0, 1, 2
N_SPECIAL = 3
#: Value of the bias channel in every embedding, and the scale of the output layer's random part.
BIAS_CHANNEL = 30.0
OUTPUT_SCALE = 2.0
LAYER_NORM_GAIN = BIAS_CHANNEL / 8.0
DIGIT_BIAS = 3.0
BRACE_BIAS = 3.1


def _bias(eos_bias: float) -> np.ndarray:
    bias = np.full(N_SPECIAL + 256, -30.0, dtype=np.float32)
    bias[N_SPECIAL + 0x20 : N_SPECIAL + 0x7F] = 0.0  # printable ASCII
    bias[N_SPECIAL + ord("0") : N_SPECIAL + ord("9") + 1] = DIGIT_BIAS
    bias[N_SPECIAL + ord("}")] = BRACE_BIAS
    bias[EOS] = eos_bias
    return bias


def write_tiny_llama(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    context: int = 4096,
    eos_bias: float = -0.5,
) -> Path:
    """Write the model (see the module docstring) to ``path``; same arguments → same file."""
    import gguf  # the test extra; only tests and benchmarks write models

    rng = np.random.default_rng(seed)
    n_vocab = N_SPECIAL + 256

    def rand(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    p = Path(path)
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_name("autotts-tiny-llama")
    w.add_context_length(context)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    )
    w.add_unk_token_id(UNK)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)

    embd = rand(n_vocab, n_embd, scale=0.05)
    embd[:, 0] = BIAS_CHANNEL  # the constant "bias" channel; no layer reads or writes it
    w.add_tensor("token_embd.weight", embd)
    # The layers' RMS norms see the bias channel too, which shrinks everything else; their
    # weights undo that (and drop the channel) so that attention still depends on context.
    norm = np.full(n_embd, LAYER_NORM_GAIN, dtype=np.float32)
    norm[0] = 0.0
    for i in range(n_layer):
        blk = f"blk.{i}"
        w.add_tensor(f"{blk}.attn_norm.weight", norm)
        for name in ("attn_q", "attn_k", "attn_v"):
            m = rand(n_embd, n_embd, scale=0.3)
            m[:, 0] = 0.0
            w.add_tensor(f"{blk}.{name}.weight", m)
        attn_out = rand(n_embd, n_embd, scale=0.3)
        attn_out[0, :] = 0.0  # no layer writes into the bias dimension
        w.add_tensor(f"{blk}.attn_output.weight", attn_out)
        w.add_tensor(f"{blk}.ffn_norm.weight", norm)
        for name in ("ffn_gate", "ffn_up"):
            m = rand(n_ff, n_embd, scale=0.05)
            m[:, 0] = 0.0
            w.add_tensor(f"{blk}.{name}.weight", m)
        ffn_down = rand(n_embd, n_ff, scale=0.05)
        ffn_down[0, :] = 0.0
        w.add_tensor(f"{blk}.ffn_down.weight", ffn_down)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    out = rand(n_vocab, n_embd, scale=OUTPUT_SCALE)
    # The bias channel dominates the final RMS norm, so after it h[0] ≈ sqrt(n_embd).
    out[:, 0] = _bias(eos_bias) / np.sqrt(n_embd)
    # "}" follows the contexts that would favour "5" (its random part is a copy, its bias a
    # touch higher), so greedy probes write a few digits and then close the brace.
    brace, five = N_SPECIAL + ord("}"), N_SPECIAL + ord("5")
    out[brace, 1:] = out[five, 1:]
    w.add_tensor("output.weight", out)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return p
