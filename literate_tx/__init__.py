"""literate_tx: a GPT-style transformer written three times — pure Python, NumPy, PyTorch — and
proven to be the same function.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=50, d_model=64, n_layers=2, n_heads=4, d_ff=128,
...                       max_seq_len=32, norm="rmsnorm", activation="swiglu", position="rope")
>>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> model.forward([[1, 2, 3]]).shape
(1, 3, 50)
"""

from .api import BACKENDS, available_backends, create_model
from .checkpoint import Checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from .config import ModelConfig, gpt2_config, llama_config
from .generation import generate
from .params import init_params, num_parameters, param_shapes
from .training import TrainConfig, Trainer, train

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "Checkpoint",
    "ModelConfig",
    "TrainConfig",
    "Trainer",
    "available_backends",
    "create_model",
    "generate",
    "gpt2_config",
    "init_params",
    "llama_config",
    "load_checkpoint",
    "num_parameters",
    "param_shapes",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "__version__",
]
