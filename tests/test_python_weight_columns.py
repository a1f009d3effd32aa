"""The pure-Python model's memo of weight columns never serves stale columns.

``PythonModel`` keeps the columns of every linear layer's matrix from pass to pass (see
:mod:`literate_tx.python_backend.linear`), while its parameters stay live nested lists that
optimisers and users change in place. After every kind of change, the logits must be exactly
those of a fresh model built from the changed parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

import literate_tx as ltx
from literate_tx.python_backend import PythonModel
from literate_tx.python_backend.optim import AdamW

TOKENS = [[1, 2, 3, 4]]


def fresh_logits(model: PythonModel) -> np.ndarray:
    """Logits of a new model (empty memo) holding exactly ``model``'s parameters."""
    return PythonModel(model.config, model.parameters(), dtype="float64").forward(TOKENS)


def change_element(p: dict) -> None:
    p["blocks.0.attn.w_q"][3][5] += 0.5


def change_row_in_place(p: dict) -> None:
    p["blocks.1.mlp.w_down"][2][:] = [v * -2.0 for v in p["blocks.1.mlp.w_down"][2]]


def replace_row(p: dict) -> None:
    p["blocks.0.mlp.w_up"][0] = [1.0] * len(p["blocks.0.mlp.w_up"][0])


def replace_matrix(p: dict) -> None:
    p["blocks.1.attn.w_o"] = [[0.1] * len(row) for row in p["blocks.1.attn.w_o"]]


def change_embedding(p: dict) -> None:
    p["embed.tokens"][2][1] -= 1.0  # read by the tied head through its columns


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("change", [change_element, change_row_in_place, replace_row,
                                    replace_matrix, change_embedding])
def test_in_place_changes_reach_the_next_pass(change, tie):
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, tie_embeddings=tie)
    model = PythonModel(cfg, seed=1, dtype="float64")
    before = model.forward(TOKENS)  # fills the memo
    change(model.params)
    after = model.forward(TOKENS)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, fresh_logits(model))


def test_replacing_all_parameters_reaches_the_next_pass():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
    model = PythonModel(cfg, seed=1, dtype="float64")
    model.forward(TOKENS)
    other = PythonModel(cfg, seed=2, dtype="float64")
    model.params = {name: [list(r) if isinstance(r, list) else r for r in v]
                    for name, v in other.params.items()}
    np.testing.assert_array_equal(model.forward(TOKENS), other.forward(TOKENS))
    model.load_parameters(PythonModel(cfg, seed=3, dtype="float64").parameters())
    np.testing.assert_array_equal(model.forward(TOKENS), fresh_logits(model))


def test_optimiser_steps_reach_the_next_pass():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, tie_embeddings=True)
    model = PythonModel(cfg, seed=0, dtype="float64")
    optimizer = AdamW(model.params, lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        _, grads = model.loss_and_grads(TOKENS, [[2, 3, 4, 5]])
        optimizer.step(grads)
        np.testing.assert_array_equal(model.forward(TOKENS), fresh_logits(model))
