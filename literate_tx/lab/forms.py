r"""The Train page's form as data: which fields, their choices and tooltips, and the config they
make.

The form is built from :class:`~literate_tx.training.TrainConfig` itself, so that a field added
to the configuration appears in the lab without touching the page: the tooltips are the
field descriptions of ``TrainConfig``'s docstring (:func:`field_help`), the starting values
are a recipe's (:func:`recipe_config`), and :func:`make_config` validates what was typed with
``TrainConfig``'s own checks, whose messages the page shows.

Examples
--------
>>> field_help()["backend"]
'one of {"numpy", "python", "torch"}'
>>> CHOICES["schedule"]
('constant', 'cosine', 'linear')

>>> make_config("digits", "default", {"steps": 5}).steps
5
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..config import ACTIVATIONS, NORMS, POSITIONS, RESIDUALS
from ..training import TrainConfig, default_config
from ..training import config as _training_config

__all__ = ["ARCHITECTURE", "CHOICES", "field_help", "recipes", "recipe_config", "make_config",
           "other_fields"]

#: The model's switches and sizes, in the order the page shows them.
ARCHITECTURE = ("d_model", "n_layers", "n_heads", "d_ff", "norm", "residual", "activation",
                "position", "bias", "tie_embeddings", "dropout")

#: Fields with a fixed set of values (drawn as select boxes).
CHOICES: dict[str, tuple[str, ...]] = {
    "norm": tuple(NORMS), "residual": tuple(RESIDUALS), "activation": tuple(ACTIVATIONS),
    "position": tuple(POSITIONS), "backend": ("numpy", "python", "torch"),
    "task": ("digits", "text"), "dtype": ("float32", "float64"),
}
# the trainer's own lists of allowed values, where this version of it has them
for _field, _name in (("schedule", "SCHEDULES"), ("optimizer", "OPTIMIZERS"),
                      ("amp", "AMP_MODES"), ("tokenizer", "TOKENIZER_KINDS")):
    _allowed = getattr(_training_config, _name, None)
    if _allowed and all(isinstance(v, str) for v in _allowed):
        CHOICES[_field] = tuple(_allowed)


def field_help() -> dict[str, str]:
    r"""Each ``TrainConfig`` field's description, from the class docstring (one line each).

    Examples
    --------
    >>> field_help()["steps"]
    'Number of optimiser updates (``>= 1``).'
    """
    doc = TrainConfig.__doc__ or ""
    section = doc.split("Parameters\n    ----------\n", 1)[-1].split("\n    Raises", 1)[0]
    out: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        head = re.match(r"^    (\w[\w, ]*?)(?: : .*)?$", line)
        if head and not line.startswith("        "):
            names = [n.strip() for n in head.group(1).split(",")]
            kind = line.split(" : ", 1)[1].strip() if " : " in line else ""
            for n in names:
                out.setdefault(n, f"one of {kind}" if kind.startswith("{") else "")
        elif line.startswith("        ") and names:
            for n in names:
                described = out[n] if not out[n].startswith("one of {") else ""
                out[n] = (described + " " + line.strip()).strip()
    return out


def recipes(task: str) -> list[str]:
    r"""Recipe names for ``task``: ``"default"`` (:func:`default_config`) and the named
    recipes of :mod:`literate_tx.training.recipes` made for that task.

    Examples
    --------
    >>> recipes("digits")
    ['default']
    >>> recipes("text")[:3]
    ['default', 'tiny', 'small']
    """
    try:
        from ..training.recipes import RECIPES
    except ImportError:  # pragma: no cover - an older literate_tx without named recipes
        return ["default"]
    return ["default"] + [name for name, r in RECIPES.items()
                          if r.fields.get("task", task) == task]


def recipe_config(task: str, recipe: str = "default", **overrides: Any) -> TrainConfig:
    r"""The configuration a recipe starts from (``"default"``: the task's defaults), with
    ``overrides`` on top (:func:`~literate_tx.training.default_config`).

    Raises
    ------
    ValueError
        For an unknown task or recipe.

    Examples
    --------
    >>> recipe_config("text").seq_len
    64
    >>> recipe_config("text", "tiny").d_model
    128
    >>> recipe_config("text", "huge-imaginary")
    Traceback (most recent call last):
    ...
    ValueError: recipe='huge-imaginary' is not allowed; allowed: 'default', ...
    """
    known = recipes(task)
    if recipe not in known:
        raise ValueError(f"recipe={recipe!r} is not allowed; allowed: "
                         + ", ".join(map(repr, known)))
    if recipe == "default":
        return default_config(task, **overrides)
    return default_config(task, recipe=recipe, **overrides)


def other_fields() -> list[str]:
    r"""``TrainConfig`` fields the page puts under "more settings" (not the task, backend,
    output folder, recipe basics or the architecture).

    Examples
    --------
    >>> "seed" in other_fields(), "d_model" in other_fields()
    (True, False)
    """
    shown = {"task", "backend", "out", "steps", "batch_size", "lr", "text_file", "dataset",
             "recipe", *ARCHITECTURE}
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in shown]


def make_config(task: str, recipe: str, values: dict[str, Any]) -> TrainConfig:
    r"""The :class:`TrainConfig` of the form: the recipe's values with the form's on top.

    ``task="file"`` means the text task on the file ``values["text_file"]``.

    Raises
    ------
    ValueError
        TrainConfig's own message for an impossible value (e.g. ``n_heads`` not dividing
        ``d_model``), or a missing text file.

    Examples
    --------
    >>> make_config("digits", "default", {"d_model": 30, "n_heads": 4})
    Traceback (most recent call last):
    ...
    ValueError: n_heads=4 is not allowed; it must divide d_model=30
    >>> make_config("file", "default", {"text_file": ""})
    Traceback (most recent call last):
    ...
    ValueError: task 'a file' needs the path of a UTF-8 text file
    """
    values = dict(values)
    values.pop("recipe", None)  # the recipe is the argument
    if task == "file":
        path = str(values.get("text_file") or "").strip()
        if not path:
            raise ValueError("task 'a file' needs the path of a UTF-8 text file")
        import os

        if not os.path.isfile(path):
            raise ValueError(f"text_file={path!r}: no such file")
        values["text_file"] = path
        task = "text"
    else:
        values.pop("text_file", None)
    config = recipe_config(task, recipe, **values)
    if config.warmup_steps >= config.steps and "warmup_steps" in values \
            and values["warmup_steps"] != recipe_config(task, recipe).warmup_steps:
        raise ValueError(f"warmup_steps={config.warmup_steps} is not allowed with steps="
                         f"{config.steps}: the learning rate would still be rising at the last "
                         "step; give warmup_steps < steps (e.g. a tenth of them)")
    return config
