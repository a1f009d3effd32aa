"""Recipes: named presets of model and training fields, overridden by flags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from literate_tx import cli
from literate_tx.params import param_shapes
from literate_tx.training import TrainConfig, default_config
from literate_tx.training.config import TEXT_TOKENIZERS
from literate_tx.training.recipes import RECIPES, recipe_fields


def n_weights(cfg: TrainConfig, vocab_size: int) -> int:
    shapes = param_shapes(cfg.model_config(vocab_size, cfg.seq_len))
    return sum(int(np.prod(s)) for s in shapes.values())


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_config_of_known_fields(name):
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(RECIPES[name].fields) <= known
    cfg = default_config("text", recipe=name)
    assert cfg.recipe == name
    for field, value in RECIPES[name].fields.items():
        assert getattr(cfg, field) == value, field
    assert TrainConfig.from_yaml(cfg.to_yaml()) == cfg


@pytest.mark.parametrize(
    ("name", "layers", "heads", "width", "batch"),
    [("tiny", 2, 4, 128, 64), ("small", 4, 8, 256, 32), ("medium", 6, 6, 384, 16)],
)
def test_seed_003_sizes(name, layers, heads, width, batch):
    cfg = default_config("text", recipe=name)
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.batch_size) == (layers, heads, width,
                                                                         batch)
    assert cfg.d_ff == 4 * width


def test_gpt2_124m_has_gpt2_small_weights():
    cfg = default_config("text", recipe="gpt2-124m")
    assert n_weights(cfg, cfg.vocab_size) == 124_439_808  # GPT-2 small, tied embeddings
    assert cfg.batch_size // cfg.grad_accum * cfg.grad_accum == cfg.batch_size


def test_fields_given_override_the_recipe():
    cfg = default_config("text", recipe="medium", d_model=192, dropout=0.0)
    assert (cfg.d_model, cfg.dropout, cfg.n_layers) == (192, 0.0, 6)
    assert recipe_fields("medium")["d_model"] == 384  # the recipe itself is unchanged


def test_recipe_errors():
    with pytest.raises(ValueError, match="recipe='huge' is not allowed"):
        default_config("text", recipe="huge")
    with pytest.raises(ValueError, match="recipe='tiny' is a recipe for task='text'"):
        default_config("digits", recipe="tiny")
    with pytest.raises(ValueError, match="recipe='x' is not allowed"):
        TrainConfig(task="text", recipe="x")


def test_cli_lists_agree_with_the_package():
    assert cli._RECIPES == list(RECIPES)
    assert cli._TOKENIZERS == list(TEXT_TOKENIZERS)


def test_cli_recipe_implies_text_and_flags_override(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    assert cli.main(["train", "--recipe", "small", "--lr", "5e-4", "--save-config",
                     str(path)]) == 0
    cfg = TrainConfig.load_yaml(path)
    assert (cfg.task, cfg.recipe, cfg.n_layers, cfg.lr) == ("text", "small", 4, 5e-4)
    assert cli.main(["train", "--recipe", "small", "--task", "digits"]) == 2
    assert "recipe='small' is a recipe for task='text'" in capsys.readouterr().err


def test_config_file_overrides_the_recipe_and_flags_override_the_file(tmp_path):
    path = tmp_path / "in.yaml"
    path.write_text("recipe: tiny\nd_model: 64\nn_heads: 2\n")
    out = tmp_path / "out.yaml"
    assert cli.main(["train", "--task", "text", "--config", str(path), "--n-heads", "4",
                     "--save-config", str(out)]) == 0
    cfg = TrainConfig.load_yaml(out)
    assert (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.batch_size) == (64, 4, 2, 64)
