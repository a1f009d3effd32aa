"""Shared hypothesis strategies: configurations drawn from the full switch matrix, and O(1) weights.

Gradient checks use weights of order one (not the 0.02-scale initialisation), because tiny
weights make every layer nearly linear and hide mistakes in the non-linear parts.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from literate_tx import ModelConfig
from literate_tx.config import ACTIVATIONS, NORMS, POSITIONS, RESIDUALS, RopeScaling
from literate_tx.params import param_shapes

#: Llama 3.1's RoPE scaling with a context T0 = 128 chosen so that the frequencies of a 2- or
#: 4-wide head fall in all three bands (wavelengths 2 pi, 20 pi and 200 pi for theta 100 and
#: 10000, against the bounds 32 and 128): kept, blended and stretched.
LLAMA31_SCALING = RopeScaling(factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                              original_max_seq_len=128)


@st.composite
def configs(draw, *, max_layers: int = 2, max_heads: int = 2, max_seq_len: int = 6,
            dropout: bool = False, **fixed) -> ModelConfig:
    """A small config with every switch drawn from its full set of values.

    Keyword arguments named after a switch (``norm="rmsnorm"``, ``position="alibi"``) fix it,
    so that a parametrized test visits every value of that switch for sure. ``gqa`` is the one
    switch that is not a field: ``gqa=True`` draws grouped-query attention (``n_heads`` 2 or 4
    and ``n_kv_heads`` a divisor below it, so that groups of two heads sharing one of two
    key/value heads occur), ``gqa=False`` plain multi-head attention; unfixed, ``n_kv_heads`` is
    drawn from the divisors of ``n_heads``. ``rope_scaling=True`` draws RoPE with
    :data:`LLAMA31_SCALING`, ``False`` no scaling; unfixed, a RoPE config is scaled half the time.
    """
    unknown = set(fixed) - set(SWITCHES)
    if unknown:
        raise TypeError(f"configs() cannot fix {sorted(unknown)}; it fixes {sorted(SWITCHES)}")
    gqa = fixed.get("gqa")
    n_heads = draw(st.sampled_from([2, 4]) if gqa else st.integers(1, max_heads))
    divisors = [g for g in range(1, n_heads + 1) if n_heads % g == 0]
    if gqa is None:
        n_kv_heads = draw(st.sampled_from(divisors))
    else:
        n_kv_heads = draw(st.sampled_from(divisors[:-1])) if gqa else n_heads
    d_head = draw(st.sampled_from([2, 4]))
    with_norm = tuple(n for n in NORMS if n != "none")  # sandwich needs a norm
    norm = fixed.get("norm") or draw(st.sampled_from(
        with_norm if fixed.get("residual") == "sandwich" else NORMS))
    residuals = RESIDUALS if norm != "none" else ("pre", "post")

    def switch(name, strategy):
        return fixed[name] if name in fixed else draw(strategy)

    scaled = fixed.get("rope_scaling")
    position = "rope" if scaled else switch("position", st.sampled_from(POSITIONS))
    if scaled is None:
        scaled = position == "rope" and draw(st.booleans())
    return ModelConfig(
        vocab_size=draw(st.integers(3, 7)),
        d_model=n_heads * d_head,
        n_layers=draw(st.integers(1, max_layers)),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_ff=draw(st.integers(2, 8)),
        max_seq_len=max_seq_len,
        norm=norm,
        residual=switch("residual", st.sampled_from(residuals)),
        activation=switch("activation", st.sampled_from(ACTIVATIONS)),
        position=position,
        rope_scaling=LLAMA31_SCALING if scaled else None,
        bias=switch("bias", st.booleans()),
        tie_embeddings=switch("tie_embeddings", st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.25])) if dropout else 0.0,
        norm_eps=draw(st.sampled_from([1e-5, 1e-6])),
        rope_theta=draw(st.sampled_from([10000.0, 100.0])),
    )


#: Every value of every architecture switch, as (field, value) pairs, for parametrized tests
#: that must visit each one (random draws from the full matrix can miss a rare value).
SWITCHES = {"norm": NORMS, "residual": RESIDUALS, "activation": ACTIVATIONS,
            "position": POSITIONS, "bias": (False, True), "tie_embeddings": (False, True),
            "gqa": (False, True), "rope_scaling": (False, True)}
SWITCH_VALUES = [(field, value) for field, values in SWITCHES.items() for value in values]


def random_params(cfg: ModelConfig, seed: int, scale: float = 1.0,
                  dtype: str = "float64") -> dict[str, np.ndarray]:
    """O(1) random weights for every parameter (norm gains around 1, biases non-zero too)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        value = rng.normal(0.0, scale, size=shape)
        if "norm" in name and name.endswith(".weight"):
            value = 1.0 + 0.5 * value
        params[name] = value.astype(dtype)
    return params


@st.composite
def batches(draw, cfg: ModelConfig, max_batch: int = 2):
    """Token ids and next-token targets (some targets ignored)."""
    B = draw(st.integers(1, max_batch))
    T = draw(st.integers(1, cfg.max_seq_len))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, cfg.vocab_size, size=(B, T))
    targets = rng.integers(0, cfg.vocab_size, size=(B, T))
    targets[rng.random((B, T)) < 0.2] = -100
    targets[0, -1] = rng.integers(0, cfg.vocab_size)  # at least one position counts
    return tokens, targets


@st.composite
def prompts_and_steps(draw, cfg: ModelConfig, max_batch: int = 2):
    """(B, T) token ids and a split 1 <= split < T: a prompt, then one token at a time."""
    B = draw(st.integers(1, max_batch))
    T = draw(st.integers(2, cfg.max_seq_len))
    split = draw(st.integers(1, T - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.integers(0, cfg.vocab_size, size=(B, T)), split
