r"""Recipes: named sets of model and training fields for the ``text`` task.

A recipe is a starting point, not a mode: :func:`~literate_tx.training.default_config`
(``literate-tx train --recipe NAME``) lays its fields over the text task's defaults, and every
field given after it (a ``--config`` file, a flag, a keyword) overrides it. The run's
:class:`~literate_tx.training.TrainConfig` records the name in ``recipe``, with the fields it
ended up with, so a checkpoint says what it was trained with.

=============  ============================  =====================================================
recipe         model (L, H, C, F, T)         training
=============  ============================  =====================================================
``tiny``       2, 4, 128, 512, 128           B = 64, lr 3e-3 -> 3e-4, 2 000 steps; ~0.4 M weights
                                             besides the embeddings: minutes on a laptop CPU
``small``      4, 8, 256, 1024, 256          B = 32, lr 1e-3 -> 1e-4, dropout 0.1, 5 000 steps;
                                             ~3.2 M weights
``medium``     6, 6, 384, 1536, 256          B = 16, lr 1e-3 -> 1e-4, dropout 0.2, 5 000 steps;
                                             ~10.6 M weights (nanoGPT's Shakespeare model)
``gpt2-124m``  12, 12, 768, 3072, 1024       GPT-2 small on BPE tokens (V = 50 257, tied
                                             embeddings: 124 M weights); PyTorch on a GPU,
                                             bfloat16, compiled, B = 480 rows per update
                                             in 40 micro-batches of 12,
                                             lr 6e-4 -> 6e-5, 600 000 steps (nanoGPT's recipe)
=============  ============================  =====================================================

Where the numbers come from: ``tiny``, ``small`` and ``medium`` are the model sizes and
batch sizes of seed 003's "Beginner", "Intermediate" and "Advanced" recipes for Tiny
Shakespeare (2 layers, 4 heads, width 128, batch 64; 4, 8, 256, 32; 6, 6, 384, 16), with
:math:`F = 4C`. Their learning rates are not seed 003's (3e-4, 2e-4, 1e-4, meant for many
epochs): ``small`` and ``medium`` take nanoGPT's 1e-3 for its 6-layer, 384-wide character
model, and ``tiny`` a larger 3e-3, since a smaller model tolerates a larger step. ``gpt2-124m``
is nanoGPT's ``train_gpt2.py`` configuration: about 0.5 M tokens per update (480 sequences
of 1 024 tokens, in 40 accumulated micro-batches of 12), AdamW with :math:`\zeta_2 = 0.95`,
weight decay 0.1, 2 000 warm-up steps. None of these rates was tuned on this project's machines.

The character-level recipes keep the tokenizer the run asks for (``char`` by default);
``gpt2-124m`` asks for a 50 257-id BPE, which this package trains in pure Python: slow on a
large corpus, so prepare it once (``literate-tx prepare``) or pass ``--tokenizer-file``.

Examples
--------
>>> from literate_tx.training import default_config
>>> cfg = default_config("text", recipe="small", lr=5e-4)
>>> cfg.recipe, cfg.n_layers, cfg.d_model, cfg.lr
('small', 4, 256, 0.0005)
>>> RECIPES
RECIPES(tiny, small, medium, gpt2-124m)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["RECIPES", "Recipe", "recipe_fields"]


@dataclass(frozen=True)
class Recipe:
    r"""A named set of :class:`~literate_tx.training.TrainConfig` fields.

    Parameters
    ----------
    name : str
    summary : str
        One line for ``--help`` and the docs.
    fields : mapping
        Field name to value; every name is a ``TrainConfig`` field (checked by the tests).

    Examples
    --------
    >>> RECIPES["tiny"].fields["d_model"]
    128
    """

    name: str
    summary: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


class _RecipeTable(Mapping):
    """A read-only name -> :class:`Recipe` table whose repr lists the names (not every field)."""

    def __init__(self, recipes: list[Recipe]):
        self._recipes = {r.name: r for r in recipes}

    def __getitem__(self, name: str) -> Recipe:
        return self._recipes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._recipes)

    def __len__(self) -> int:
        return len(self._recipes)

    def __repr__(self) -> str:
        return f"RECIPES({', '.join(self._recipes)})"


_CHAR_COMMON = dict(task="text", activation="gelu_tanh", position="learned", norm="layernorm",
                    residual="pre", bias=True, schedule="cosine", beta2=0.99, grad_clip=1.0)

#: The recipes by name, smallest first.
RECIPES: Mapping[str, Recipe] = _RecipeTable([
    Recipe("tiny", "seed 003's Beginner: 2 layers, 4 heads, width 128, batch 64 (CPU, minutes)",
           dict(_CHAR_COMMON, out="runs/tiny", n_layers=2, n_heads=4, d_model=128, d_ff=512,
                seq_len=128, batch_size=64, lr=3e-3, min_lr=3e-4, warmup_steps=100,
                steps=2000, dropout=0.0, weight_decay=0.01, eval_every=200, eval_batches=8,
                checkpoint_every=500)),
    Recipe("small", "seed 003's Intermediate: 4 layers, 8 heads, width 256, batch 32",
           dict(_CHAR_COMMON, out="runs/small", n_layers=4, n_heads=8, d_model=256, d_ff=1024,
                seq_len=256, batch_size=32, lr=1e-3, min_lr=1e-4, warmup_steps=200,
                steps=5000, dropout=0.1, weight_decay=0.1, eval_every=250, eval_batches=20,
                checkpoint_every=500)),
    Recipe("medium", "seed 003's Advanced: 6 layers, 6 heads, width 384, batch 16 "
           "(nanoGPT's Shakespeare size)",
           dict(_CHAR_COMMON, out="runs/medium", n_layers=6, n_heads=6, d_model=384,
                d_ff=1536, seq_len=256, batch_size=16, lr=1e-3, min_lr=1e-4,
                warmup_steps=200, steps=5000, dropout=0.2, weight_decay=0.1, eval_every=250,
                eval_batches=20, checkpoint_every=500)),
    Recipe("gpt2-124m", "GPT-2 small (124 M) on BPE tokens, nanoGPT's recipe: for a GPU",
           dict(task="text", out="runs/gpt2-124m", backend="torch", device="auto",
                tokenizer="bpe", vocab_size=50257, n_layers=12, n_heads=12, d_model=768,
                d_ff=3072, seq_len=1024, activation="gelu_tanh", position="learned",
                norm="layernorm", residual="pre", bias=True, tie_embeddings=True,
                dropout=0.0, batch_size=480, grad_accum=40, amp="bf16", compile=True,
                lr=6e-4, min_lr=6e-5, warmup_steps=2000, steps=600000, schedule="cosine",
                weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0, eval_every=2000,
                eval_batches=200, checkpoint_every=2000)),
])


def recipe_fields(name: str) -> dict[str, Any]:
    r"""The fields of the recipe ``name`` (a new dict).

    Raises
    ------
    ValueError
        For an unknown name, listing the recipes.

    Examples
    --------
    >>> recipe_fields("medium")["n_layers"]
    6
    >>> recipe_fields("huge")
    Traceback (most recent call last):
    ...
    ValueError: recipe='huge' is not allowed; allowed: 'tiny', 'small', 'medium', 'gpt2-124m'
    """
    if name not in RECIPES:
        raise ValueError(f"recipe={name!r} is not allowed; allowed: "
                         + ", ".join(map(repr, RECIPES)))
    return dict(RECIPES[name].fields)
