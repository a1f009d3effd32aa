"""ModelConfig validation: every invalid value raises ValueError naming the field."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import literate_tx as ltx
from literate_tx import ModelConfig

BASE = dict(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=8)

INVALID = [
    ("vocab_size", 0), ("vocab_size", -3), ("vocab_size", 2.5), ("vocab_size", True),
    ("d_model", 0), ("n_layers", 0), ("n_heads", 0), ("n_heads", 3), ("d_ff", 0),
    ("max_seq_len", 0), ("max_seq_len", "8"),
    ("norm", "batchnorm"), ("norm", None), ("residual", "middle"), ("activation", "tanh"),
    ("position", "relative"), ("bias", "yes"), ("tie_embeddings", 1),
    ("dropout", -0.1), ("dropout", 1.0), ("dropout", "0.1"), ("norm_eps", 0.0),
    ("norm_eps", -1e-5), ("rope_theta", 1.0), ("init_std", 0.0), ("init_std", None),
]


@pytest.mark.parametrize(("field", "value"), INVALID)
def test_invalid_value_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{**BASE, field: value})


@given(st.sampled_from([f.name for f in dataclasses.fields(ModelConfig)]),
       st.one_of(st.none(), st.text(max_size=3), st.integers(-5, 0), st.lists(st.integers())))
def test_garbage_in_any_field_raises_valueerror_naming_it(field, value):
    """Any wrong value raises ValueError (never TypeError or AssertionError) naming the field."""
    message = None
    try:
        ModelConfig(**{**BASE, field: value})
    except ValueError as exc:
        message = str(exc)
    # some garbage is valid for some fields (e.g. 0 for dropout); then nothing to check
    if message is not None:
        assert field in message or "n_heads" in message


def test_rope_needs_even_head_width():
    with pytest.raises(ValueError, match="position='rope'"):
        ModelConfig(**{**BASE, "d_model": 6, "n_heads": 2, "position": "rope"})


def test_sandwich_needs_a_norm():
    with pytest.raises(ValueError, match="residual='sandwich'"):
        ModelConfig(**{**BASE, "residual": "sandwich", "norm": "none"})


def test_frozen_and_json_round_trip():
    cfg = ModelConfig(**BASE, norm="rmsnorm", position="alibi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 4  # type: ignore[misc]
    assert ModelConfig.from_json(cfg.to_json()) == cfg


def test_from_dict_rejects_unknown_and_missing_fields():
    with pytest.raises(ValueError, match="'n_head'"):
        ModelConfig.from_dict({**BASE, "n_head": 2})
    with pytest.raises(ValueError, match="d_ff"):
        ModelConfig.from_dict({k: v for k, v in BASE.items() if k != "d_ff"})


def test_presets_follow_published_conventions():
    g = ltx.gpt2_config()
    assert (g.norm, g.residual, g.activation, g.position, g.bias, g.tie_embeddings) == (
        "layernorm", "pre", "gelu_tanh", "learned", True, True)
    assert g.norm_eps == 1e-5
    assert g.d_ff == 4 * g.d_model
    assert ltx.num_parameters(g) == 124_439_808  # GPT-2 small, as published
    lcfg = ltx.llama_config()
    assert (lcfg.norm, lcfg.activation, lcfg.position, lcfg.bias, lcfg.tie_embeddings) == (
        "rmsnorm", "swiglu", "rope", False, False)
    assert lcfg.d_ff == 11008
    assert ltx.num_parameters(lcfg) == 6_738_415_616  # Llama-7B, as published


def test_create_model_rejects_bad_backend_and_dtype():
    cfg = ModelConfig(**BASE)
    with pytest.raises(ValueError, match="backend='tpu'"):
        ltx.create_model(cfg, backend="tpu")
    with pytest.raises(ValueError, match="dtype='float16'"):
        ltx.create_model(cfg, dtype="float16")


def test_bad_tokens_are_rejected_clearly():
    model = ltx.create_model(ModelConfig(**BASE))
    with pytest.raises(ValueError, match="vocab_size=10"):
        model.forward([[1, 2, 10]])
    with pytest.raises(ValueError, match="max_seq_len=8"):
        model.forward([list(range(9))])
    with pytest.raises(ValueError, match="integer token ids"):
        model.forward([[0.5, 1.0]])
    with pytest.raises(ValueError, match="targets have shape"):
        model.loss_and_grads([[1, 2]], [[1, 2, 3]])
    with pytest.raises(ValueError, match="ignore_index"):
        model.loss_and_grads([[1, 2]], [[-100, -100]])


def test_bad_dropout_masks_are_rejected():
    cfg = ModelConfig(**{**BASE, "dropout": 0.5})
    model = ltx.create_model(cfg)
    with pytest.raises(ValueError, match="unknown dropout mask 'embed.drop'"):
        model.forward([[1, 2]], train=True, masks={"embed.drop": 1.0})
    with pytest.raises(ValueError, match=r"'embed.dropout' has shape \(1, 1, 8\)"):
        model.forward([[1, 2]], train=True, masks={"embed.dropout": [[[1.0] * 8]]})
