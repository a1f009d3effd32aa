"""``python -m literate_tx``: a forward-pass demo on the NumPy reference backend.

It builds a small Llama-style model, runs one sequence through it and prints what a reader wants
to see: the configuration, the parameter count, the loss at initialisation next to its expected
value :math:`\\log V`, and the attention weights of the first head as text.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import literate_tx as ltx


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status.

    Examples
    --------
    >>> main([])  # doctest: +ELLIPSIS
    literate_tx ... forward-pass demo (NumPy backend)
    ...
    """
    cfg = ltx.llama_config(vocab_size=50, d_model=64, n_layers=2, n_heads=4, max_seq_len=32)
    model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocab_size, size=(1, 6))
    targets = np.roll(tokens, -1, axis=1)
    print(f"literate_tx {ltx.__version__} forward-pass demo (NumPy backend)")
    print(f"config: {cfg.norm}, {cfg.residual}-norm, {cfg.activation}, {cfg.position} positions, "
          f"{cfg.n_layers} layers x {cfg.n_heads} heads, d_model={cfg.d_model}")
    print(f"parameters: {model.num_parameters():,}")
    logits, weights = model.forward(tokens, return_weights=True)
    loss, grads = model.loss_and_grads(tokens, targets)
    print(f"tokens {tokens.tolist()[0]} -> logits {logits.shape}")
    print(f"loss at initialisation: {loss:.4f}  (log V = {math.log(cfg.vocab_size):.4f})")
    gnorm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    print(f"gradient norm: {gnorm:.4f} over {len(grads)} tensors")
    print("attention weights, layer 0, head 0 (rows: queries, columns: keys):")
    for row in weights[0][0, 0]:
        print("  " + " ".join(f"{w:5.2f}" if w > 0 else "    ." for w in row))
    print("backends available:", ", ".join(ltx.available_backends()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
