"""The walls between the package's rooms hold at import time.

Each import runs in a fresh interpreter, and the test reads what that import loaded from
``sys.modules``: the configuration alone loads no backend and no trainer, no backend loads
another backend, the pure-Python backend does not load the NumPy backend, no backend loads the
top-level optimiser module, and the benchmark does not load the plots.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

BACKENDS = ("literate_tx.numpy_backend", "literate_tx.python_backend", "literate_tx.torch_backend")
HEAVY = ("literate_tx.training", "literate_tx.plots", "literate_tx.optim", "matplotlib")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def loaded_by(statement: str) -> set[str]:
    """The modules in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def ours(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "literate_tx" or m.startswith("literate_tx.")}


def under(modules: set[str], prefixes) -> set[str]:
    """The modules that are one of ``prefixes`` or inside one of them."""
    return {m for m in modules for p in prefixes if m == p or m.startswith(p + ".")}


def test_config_alone_loads_nothing_else():
    assert ours(loaded_by("import literate_tx.config")) == {"literate_tx", "literate_tx.config"}


def test_the_package_loads_its_names_on_first_use():
    assert ours(loaded_by("import literate_tx")) == {"literate_tx"}
    # one name loads its own module and what that needs, not the trainer or a backend
    loaded = loaded_by("from literate_tx import ModelConfig, param_shapes")
    assert not under(loaded, BACKENDS + HEAVY + ("torch",))


def test_the_package_names_resolve_and_are_listed():
    import literate_tx as ltx

    for name in ltx.__all__:
        assert getattr(ltx, name) is not None, name
        assert name in dir(ltx), name
    from literate_tx.training import TrainConfig, train

    assert ltx.TrainConfig is TrainConfig
    assert ltx.train is train
    assert set(ltx.__all__) == {*ltx._LAZY, "__version__"}
    with pytest.raises(AttributeError, match="no_such_name"):
        ltx.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("module", "own"),
    [
        ("literate_tx.numpy_backend", "literate_tx.numpy_backend"),
        ("literate_tx.numpy_backend.fast", "literate_tx.numpy_backend"),
        ("literate_tx.numpy_backend.optim", "literate_tx.numpy_backend"),
        ("literate_tx.python_backend", "literate_tx.python_backend"),
        ("literate_tx.python_backend.fast", "literate_tx.python_backend"),
        ("literate_tx.python_backend.optim", "literate_tx.python_backend"),
        pytest.param(
            "literate_tx.torch_backend.fast",
            "literate_tx.torch_backend",
            marks=pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed"),
        ),
    ],
)
def test_a_backend_loads_no_other_backend_nor_the_trainer(module, own):
    loaded = loaded_by(f"import {module}")
    assert module in loaded
    others = tuple(b for b in BACKENDS if b != own)
    assert not under(loaded, others + HEAVY), module
    if own != "literate_tx.torch_backend":
        assert "torch" not in loaded, module


@pytest.mark.parametrize("module", ["literate_tx.masks", "literate_tx.optim_rules"])
def test_shared_modules_load_no_backend(module):
    loaded = loaded_by(f"import {module}")
    assert not under(loaded, BACKENDS + HEAVY[:2] + ("torch",)), module


def test_the_optim_module_forwards_to_the_numpy_backend_on_first_use():
    loaded = loaded_by("import literate_tx.optim")
    assert not under(loaded, BACKENDS + ("torch",))
    loaded = loaded_by("from literate_tx.optim import AdamW")
    assert "literate_tx.numpy_backend.optim" in loaded
    from literate_tx import optim
    from literate_tx.numpy_backend import optim as numpy_optim

    for name in ("SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "default_decay_filter"):
        assert getattr(optim, name) is getattr(numpy_optim, name), name


def test_the_benchmark_does_not_load_the_plots():
    loaded = loaded_by("import literate_tx.bench")
    assert not under(loaded, ("literate_tx.plots", "matplotlib"))
    # nor later, when it works out a FLOPs figure
    loaded = loaded_by(
        "import literate_tx.bench as b, literate_tx as ltx\n"
        "b.step_flops(ltx.ModelConfig(10, 8, 1, 2, 16, 8), 2, 4, 'train_step')"
    )
    assert not under(loaded, ("literate_tx.plots", "matplotlib"))
