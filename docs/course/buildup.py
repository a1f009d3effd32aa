r"""The "Build it up" track: five models, one text, one training loop.

Each step of the course adds one idea to the model before it, and every step trains on the same
characters of *Alice's Adventures in Wonderland* (the package's embedded corpus), with the same
batches, the same optimiser and the same number of updates, so the validation losses can be
compared directly:

1. :class:`Bigram` — the next character from the current one: a table of logits.
2. :class:`OneHead` — token and position embeddings, one causal attention head, a linear head.
3. :class:`MultiHead` — the same width split into :math:`H` heads.
4. :class:`OneBlock` — a pre-norm transformer block: attention and MLP, residuals, LayerNorm.
5. :class:`GPT` — the package's model (:func:`literate_tx.create_model`), two blocks.

Every model has a parameter dict ``params`` and ``loss_and_grads(x, y)`` returning the mean
cross-entropy and one gradient per parameter; the forward and backward passes are assembled from
the NumPy reference backend's functions, whose derivations are the chapters of
*The transformer, derived*.

The pages of the course include the classes below with ``literalinclude`` and run them while the
site builds; ``tests/test_exercises.py`` checks every model's gradient against finite differences.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import literate_tx as ltx
import literate_tx.data
from literate_tx.numpy_backend.attention import attention_backward, attention_forward
from literate_tx.numpy_backend.block import block_backward, block_forward
from literate_tx.numpy_backend.embedding import embedding_backward, embedding_forward
from literate_tx.numpy_backend.linear import linear_backward, linear_forward
from literate_tx.numpy_backend.loss import cross_entropy_backward, cross_entropy_forward
from literate_tx.numpy_backend.norms import layernorm_backward, layernorm_forward
from literate_tx.numpy_backend.optim import Adam

#: The shared recipe: every step trains with exactly these settings.
RECIPE = {"chars": 40_000, "T": 32, "B": 16, "steps": 500, "lr": 1e-2, "C": 32, "seed": 0}


class Data(NamedTuple):
    """The course's text as character ids, cut into a training and a validation stream."""

    vocab: str
    train: np.ndarray
    val: np.ndarray


def load_data(chars: int = RECIPE["chars"]) -> Data:
    """The first ``chars`` characters of the embedded corpus; the last 10 % for validation."""
    text = ltx.data.default_corpus()[:chars]
    vocab = "".join(sorted(set(text)))
    ids = np.array([vocab.index(c) for c in text], dtype=np.int64)  # (N,)
    train, val = ltx.data.train_val_split(ids, val_fraction=0.1)
    return Data(vocab, train, val)


# -- step 1 ---------------------------------------------------------------------------------------
class Bigram:
    r"""Step 1: a table :math:`W \in \mathbb{R}^{V \times V}`; row :math:`x_t` holds the logits
    of the character after :math:`x_t`. Nothing before :math:`x_t` is seen."""

    def __init__(self, V: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.params = {"table": 0.02 * rng.standard_normal((V, V))}  # (V, V)

    def loss_and_grads(self, x, y):
        logits, emb = embedding_forward(x, self.params["table"], None)  # (B, T, V)
        loss, ce = cross_entropy_forward(logits, y)
        dlogits = cross_entropy_backward(ce)  # (B, T, V)
        dtable, _ = embedding_backward(dlogits, emb)  # (V, V): scatter-add into the rows read
        return loss, {"table": dtable}


# -- step 2 ---------------------------------------------------------------------------------------
def _attention_config(V: int, C: int, H: int, T: int) -> ltx.ModelConfig:
    """The configuration the attention functions read: widths, heads, no bias, no RoPE."""
    return ltx.ModelConfig(vocab_size=V, d_model=C, n_layers=1, n_heads=H, d_ff=4 * C,
                           max_seq_len=T, bias=False, position="learned")


class OneHead:
    r"""Step 2: embed tokens and positions, let each position attend to the past with **one**
    causal attention head of width :math:`C`, then map to :math:`V` logits.

    .. math:: h = E[x] + P, \quad a = \mathrm{attention}(h), \quad \text{logits} = a W_{out}
    """

    H = 1

    def __init__(self, V: int, C: int = RECIPE["C"], T: int = RECIPE["T"], seed: int = 0):
        self.cfg = _attention_config(V, C, self.H, T)
        rng = np.random.default_rng(seed)
        s = 0.02
        self.params = {
            "tokens": s * rng.standard_normal((V, C)),  # (V, C)
            "positions": s * rng.standard_normal((T, C)),  # (T, C)
            "w_q": s * rng.standard_normal((C, C)),  # (C, C)
            "w_k": s * rng.standard_normal((C, C)),
            "w_v": s * rng.standard_normal((C, C)),
            "w_o": s * rng.standard_normal((C, C)),
            "w_out": s * rng.standard_normal((C, V)),  # (C, V)
        }

    def loss_and_grads(self, x, y):
        p = self.params
        h, emb = embedding_forward(x, p["tokens"], p["positions"])  # (B, T, C)
        a, att = attention_forward(h, p, self.cfg)  # (B, T, C)
        logits, head = linear_forward(a, p["w_out"])  # (B, T, V)
        loss, ce = cross_entropy_forward(logits, y)
        # Backward: the same steps in reverse order.
        da, g_out, _ = linear_backward(cross_entropy_backward(ce), head)  # (B, T, C)
        dh, grads = attention_backward(da, att)  # (B, T, C); w_q, w_k, w_v, w_o
        grads["tokens"], grads["positions"] = embedding_backward(dh, emb)  # (V, C), (T, C)
        grads["w_out"] = g_out
        return loss, grads


# -- step 3 ---------------------------------------------------------------------------------------
class MultiHead(OneHead):
    r"""Step 3: the same parameters, but the width :math:`C` is split into :math:`H = 4` heads of
    width :math:`D = C / H`, each with its own attention pattern."""

    H = 4


# -- step 4 ---------------------------------------------------------------------------------------
class OneBlock:
    r"""Step 4: a pre-norm transformer block — attention and a feed-forward network, each in a
    residual connection behind a LayerNorm — and a final LayerNorm before the head:

    .. math::
       h \leftarrow h + \mathrm{attn}(\mathrm{LN}(h)), \quad
       h \leftarrow h + \mathrm{MLP}(\mathrm{LN}(h)), \quad
       \text{logits} = \mathrm{LN}(h)\, W_{out}

    The parameters have the package's names and initialisation (:func:`literate_tx.init_params`),
    so that step 5 can hand them to the package's model.
    """

    L = 1

    def __init__(self, V: int, C: int = RECIPE["C"], T: int = RECIPE["T"], H: int = 4,
                 seed: int = 0):
        self.cfg = ltx.ModelConfig(vocab_size=V, d_model=C, n_layers=self.L, n_heads=H,
                                   d_ff=4 * C, max_seq_len=T, bias=False, position="learned")
        self.params = ltx.init_params(self.cfg, seed=seed)  # {name: array}

    def loss_and_grads(self, x, y):
        p, blocks = self.params, []
        h, emb = embedding_forward(x, p["embed.tokens"], p["embed.positions"])  # (B, T, C)
        for i in range(self.L):
            prefix = f"blocks.{i}."
            block = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
            h, cache = block_forward(h, block, self.cfg)  # (B, T, C)
            blocks.append(cache)
        n, ln = layernorm_forward(h, p["final_norm.weight"], None, self.cfg.norm_eps)  # (B, T, C)
        logits, head = linear_forward(n, p["lm_head.w"])  # (B, T, V)
        loss, ce = cross_entropy_forward(logits, y)
        # Backward: the same steps in reverse order, the blocks last to first.
        grads = {}
        dn, grads["lm_head.w"], _ = linear_backward(cross_entropy_backward(ce), head)  # (B, T, C)
        dh, grads["final_norm.weight"], _ = layernorm_backward(dn, ln)  # (B, T, C)
        for i in reversed(range(self.L)):
            dh, grads_block = block_backward(dh, blocks[i])  # (B, T, C)
            grads.update({f"blocks.{i}.{k}": g for k, g in grads_block.items()})
        grads["embed.tokens"], grads["embed.positions"] = embedding_backward(dh, emb)
        return loss, grads


# -- step 5 ---------------------------------------------------------------------------------------
class GPT(OneBlock):
    r"""Step 5: the GPT — step 4's block stacked :math:`L = 2` times. This is the package's model:
    ``literate_tx.create_model(self.cfg, backend="numpy", params=self.params)`` computes the same
    loss and the same gradients (the page checks it)."""

    L = 2


STEPS = {"bigram": Bigram, "one head": OneHead, "multi-head": MultiHead, "block": OneBlock,
         "GPT": GPT}


# -- the shared training loop ---------------------------------------------------------------------
class History(NamedTuple):
    """What :func:`train` measured: the steps evaluated and the losses there."""

    steps: list
    train_loss: list
    val_loss: list
    seconds: float
    n_params: int


def evaluate(model, stream: np.ndarray, T: int = RECIPE["T"], batches: int = 4) -> float:
    """Mean loss over fixed windows of ``stream`` (the same windows for every model)."""
    rng = np.random.default_rng(1234)
    losses = [model.loss_and_grads(*ltx.data.sample_batch(stream, 32, T, rng))[0]
              for _ in range(batches)]
    return float(np.mean(losses))


def train(model, data: Data, steps: int = RECIPE["steps"], every: int = 100) -> History:
    """Adam on random windows of the training stream; the validation loss every ``every`` steps.

    The batches depend only on ``RECIPE["seed"]``, so every model sees the same ones. The
    training loss reported is the mean over the batches since the last evaluation.
    """
    rng = np.random.default_rng(RECIPE["seed"])
    opt = Adam(model.params, lr=RECIPE["lr"])
    hist = History([], [], [], 0.0, sum(v.size for v in model.params.values()))
    start, recent = time.perf_counter(), []
    for step in range(steps + 1):
        if step % every == 0:
            hist.steps.append(step)
            hist.val_loss.append(evaluate(model, data.val))
            hist.train_loss.append(float(np.mean(recent)) if recent else hist.val_loss[-1])
            recent = []
        if step == steps:
            break
        x, y = ltx.data.sample_batch(data.train, RECIPE["B"], RECIPE["T"], rng)  # (B, T) each
        loss, grads = model.loss_and_grads(x, y)
        recent.append(loss)
        opt.step(grads)
    return hist._replace(seconds=time.perf_counter() - start)


def plot_history(histories: dict, ax=None):
    """Validation loss against training step, one line per model; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    for name, h in histories.items():
        ax.plot(h.steps, h.val_loss, marker="o", ms=3, label=f"{name} ({h.val_loss[-1]:.2f})")
    ax.set_xlabel("training step (batches of 16 windows of 32 characters)")
    ax.set_ylabel("validation loss (nats / char)")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


# -- one step, trained once per build -------------------------------------------------------------
_CACHE = Path(__file__).resolve().parent.parent / "_build" / ".course"


#: The package modules the course's training runs through: their source is part of the key.
_DEPENDS = ["config", "params", "masks", "optim", "optim_rules", "data.batching", "data.text"] + [
    f"numpy_backend.{name}" for name in ("activations", "attention", "block", "dropout",
                                         "embedding", "feedforward", "linear", "loss",
                                         "norms", "optim", "positions", "softmax")]


def _fingerprint() -> str:
    """A hash of this file and of the package modules the training uses."""
    import importlib.util

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for name in _DEPENDS:
        spec = importlib.util.find_spec(f"literate_tx.{name}")
        if spec is not None and spec.origin:
            digest.update(name.encode() + Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]


def run_step(name: str, data: Data | None = None, fresh: bool = False) -> History:
    """Train step ``name`` of :data:`STEPS` with the recipe, or reuse this build's result.

    The step pages train their model (``fresh=True``); the comparison page reads the same
    results back from ``docs/_build/.course`` instead of training all five again. A result is
    reused only if this file and the modules it trains with are unchanged since it was computed.
    """
    path = _CACHE / f"{name.replace(' ', '_')}.json"
    key = _fingerprint()
    if path.is_file() and not fresh:
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return History(**saved["history"])
    data = load_data() if data is None else data
    hist = train(STEPS[name](len(data.vocab)), data)
    _CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "history": hist._asdict()}))
    tmp.replace(path)
    return hist
