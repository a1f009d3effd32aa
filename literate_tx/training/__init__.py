r"""Training: one loop for every backend, with metrics, checkpoints and an exact resume.

The loop
--------
Every backend trains with the same loop. Write :math:`w_\tau` for the parameters after
:math:`\tau` updates (:math:`\tau` is the optimisation step, as in
:mod:`literate_tx.numpy_backend.optim`), :math:`\eta(\tau)` for the learning rate of
:mod:`literate_tx.schedules` and :math:`(x_\tau, y_\tau)` for the batch drawn at step
:math:`\tau`. One step is

.. math::

    \mathcal{L}_\tau = \mathcal{L}(w_\tau; x_\tau, y_\tau), \quad
    \delta w_\tau = \nabla_w \mathcal{L}_\tau, \quad
    w_{\tau+1} = \mathrm{AdamW}\bigl(w_\tau, \mathrm{clip}(\delta w_\tau), \eta(\tau)\bigr), \tag{1}

where the loss :math:`\mathcal{L}` is the mean cross-entropy over the targets that count
(:mod:`literate_tx.numpy_backend.loss`) and ``clip`` rescales the whole gradient to a global
norm of at most ``grad_clip`` (:func:`literate_tx.numpy_backend.optim.clip_grad_norm`). Only
the arithmetic differs between backends:

=========  ===================================  =======================================
backend    gradient                             update
=========  ===================================  =======================================
numpy      ``model.loss_and_grads`` (by hand)   :class:`literate_tx.numpy_backend.optim.AdamW`
python     ``model.loss_and_grads`` (by hand)   :class:`literate_tx.python_backend.optim.AdamW`
                                                on nested lists
torch      autograd on ``model.module``         :class:`torch.optim.AdamW`,
                                                ``torch.nn.utils.clip_grad_norm_``
=========  ===================================  =======================================

In every backend the norms and biases get no weight decay
(:func:`literate_tx.optim_rules.default_decay_filter`).

Tasks
-----
``digits``
    :class:`literate_tx.data.DigitsTask`: ``<bos> Max ( 5 3 9 ) =`` and the model must answer
    ``9``. Only the answer has a target, so the training loss is the answer's cross-entropy.
    Validation and test accuracy are exact match of the greedy answer, per operation.
``text``
    A language model of :func:`literate_tx.data.default_corpus` (or a file, Tiny Shakespeare,
    a folder of ``.txt`` files, a JSON Lines file or a Hugging Face dataset, the last three
    through a memory-mapped token file: :mod:`literate_tx.data.corpus`) on character, word or
    BPE tokens (``tokenizer``), cut 90/10 into train and validation text; validation reports
    the loss, the perplexity :math:`e^{\mathcal{L}}` and next-token accuracy. Named recipes
    of model and training fields: :mod:`literate_tx.training.recipes`.

Exact resume
------------
A run is a deterministic function of its :class:`TrainConfig`: the initial weights come from
``seed``, the batches from one :class:`numpy.random.Generator` (``data``), the dropout masks
from another (``dropout``; PyTorch's own generator for the torch backend), and the learning
rate is a pure function of the step. ``last.npz`` stores all of it — the weights, the
optimiser's moments and step, both generator states (as JSON in the metadata; the PyTorch one
as a ``uint8`` array), the step, the configuration and the tokenizer — so that training
``N/2`` steps, stopping, and resuming for ``N/2`` more gives the same parameters, bit for bit,
as ``N`` steps in one go. Evaluation draws no random numbers, so evaluating more or less often
changes nothing. Nothing is pickled: checkpoints are read with ``allow_pickle=False``.

Resuming with more steps
~~~~~~~~~~~~~~~~~~~~~~~~
A run keeps the learning-rate schedule it started with. Write :math:`S_0` for the ``steps`` of
the run's first start (stored in ``last.npz`` as ``schedule_steps``) and :math:`S_r` for the
``steps`` of a resume. The rate of step :math:`\tau` is

.. math::
    :nowrap:

    \begin{equation}
    \eta(\tau) = \begin{cases} \eta_{S_0}(\tau) & \tau < S_0 \\
                                \eta_{\min} & S_0 \le \tau < S_r \end{cases}           \tag{2}
    \end{equation}

where :math:`\eta_{S_0}` is the warmup and decay of :mod:`literate_tx.schedules` over
:math:`S_0` steps: a longer resume adds a constant tail at ``min_lr`` after the original
schedule, which ends at ``min_lr`` itself, so the rate never jumps. (Stretching the decay
from the stop point to :math:`S_r` was the other candidate; it makes the rate a function of
where each resume happened, so the same :math:`S_r` would give different runs depending on how
they were split, and an already finished run would start to decay again from ``min_lr`` to
``min_lr``, a tail all the same.) Consequences:

* :math:`S_r = S_0` (a resume after Ctrl-C or a kill) reproduces the uninterrupted run bit for
  bit, as above; any :math:`S_r \ge S_0` reproduces the first :math:`S_0` steps too;
* :math:`S_r` smaller than the steps already done is refused (a run cannot be shortened), and
  so is :math:`S_r` equal to them when the run has finished (``summary.json`` exists); a run
  killed after its last checkpoint but before ``summary.json`` is completed without
  training;
* to decay over a longer horizon, start a new run (another ``out``, or ``overwrite=True``).

``metrics.jsonl`` keeps one row per step and split across resumes: rows written after the
checkpoint a resume starts from are dropped, and a validation row already written is not
written again.

Runs are never overwritten by accident
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
A new run into a folder that holds ``last.npz``, ``best.npz``, ``summary.json`` or
``metrics.jsonl`` is refused with :class:`FileExistsError` (exit status 2 on the command
line) before anything is written: continue it with ``resume=True`` (``--resume``), replace it
with ``overwrite=True`` (``--overwrite``), or choose another ``out``. A NaN or inf stops the
run before the bad update is applied (:class:`NonFiniteError`) and leaves ``last.npz`` and
``best.npz`` as they were: the message names the last good checkpoint (a NaN from too high
a learning rate needs a new run with a lower ``lr``).

Files written to ``out``
------------------------
``metrics.jsonl``
    One JSON object per line: ``{"step", "split": "train", "loss", "lr", "grad_norm",
    "tokens_per_s", "time"}`` per step and ``{"step", "split": "val", "loss", ...}`` per
    evaluation (``time`` is seconds of training since the run began, across resumes).
``last.npz``, ``best.npz``
    Checkpoints (:func:`literate_tx.checkpoint.save_checkpoint`, written atomically): the latest
    state, and the state with the best validation score so far.
``summary.json``
    The final metrics (digits: test accuracy per operation; text: validation loss and a sample).
``config.yaml``
    The :class:`TrainConfig`, when PyYAML is installed.

Examples
--------
>>> import tempfile
>>> cfg = TrainConfig(task="digits", steps=3, batch_size=8, d_model=16, n_layers=1,
...                   n_heads=2, d_ff=32, n_train=50, n_val=10, n_test=10, eval_every=3,
...                   out=tempfile.mkdtemp())
>>> result = train(cfg, quiet=True)
>>> result.steps, sorted(result.metrics["test"])
(3, ['exact_match', 'loss', 'per_operation'])
"""


from .after import evaluate_checkpoint, load_trained, sample_text
from .config import DATASETS, SCHEDULES, TASKS, TrainConfig, default_config
from .engines import NonFiniteError
from .recipes import RECIPES, Recipe, recipe_fields
from .tasks import DigitsCodec
from .trainer import Trainer, TrainResult, format_summary, train

__all__ = [
    "DATASETS",
    "RECIPES",
    "SCHEDULES",
    "TASKS",
    "DigitsCodec",
    "NonFiniteError",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "default_config",
    "evaluate_checkpoint",
    "format_summary",
    "load_trained",
    "recipe_fields",
    "sample_text",
    "train",
]

