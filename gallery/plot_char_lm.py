"""
A character-level language model of *Alice in Wonderland*
=========================================================

The package ships the first nine chapters of Lewis Carroll's *Alice's Adventures in
Wonderland* (:func:`literate_tx.data.default_corpus`, public domain). Here a small transformer
learns to predict the next character of it: the text is cut 90/10 into a training part and a
validation part that the model never trains on, and we watch both losses fall and read what
the model writes.

To keep the docs build fast this trains a two-layer model for 300 steps (well under a minute
on a laptop CPU); ``literate-tx train --task text`` runs a longer recipe.
"""

# %%
# The data
# --------
# One id per character (:class:`literate_tx.tokenizers.CharTokenizer`, built from the text, plus
# four reserved tokens). At a uniform guess the loss would be :math:`\log V`.
import math

from literate_tx.data import default_corpus

text = default_corpus()
print(f"{len(text):,} characters, {len(set(text))} distinct; the opening:")
print(text[:200])

# %%
# Training
# --------
# Random windows of 32 characters, 32 per batch; every position of every window predicts the
# next character (short windows train faster here than long ones for the same number of
# characters per batch). The trainer evaluates on the first validation windows every 25 steps and
# logs the loss, the perplexity :math:`e^{\mathrm{loss}}` and the next-character accuracy.
import tempfile

from literate_tx.training import TrainConfig, Trainer

config = TrainConfig(
    task="text", backend="numpy", steps=300, batch_size=32, seq_len=32,
    lr=1e-2, min_lr=1e-3, warmup_steps=30,
    d_model=64, n_layers=2, n_heads=4, d_ff=256, activation="gelu_tanh",
    eval_every=25, eval_batches=4, sample_tokens=200, out=tempfile.mkdtemp(),
)
trainer = Trainer(config, quiet=True)
vocab_size = trainer.data.vocab_size
result = trainer.train()
val = result.metrics["val"]
print(f"{result.steps} steps in {result.wall_time:.1f} s; vocabulary V = {vocab_size}, "
      f"log V = {math.log(vocab_size):.2f}")
print(f"validation loss {val['loss']:.3f} (perplexity {val['perplexity']:.1f}), "
      f"next-character accuracy {val['accuracy']:.1%}")

# %%
# Loss curves
# -----------
# What to look for: the training loss starts at :math:`\log V` (a uniform guess) and drops
# fast while the model learns which characters are common: by the first validation point, at
# step 25, both losses are already down to about 2.7. Then both fall more slowly as the model
# learns spelling. The validation loss tracks the training loss: at this size the model is far
# from memorising the book.
import matplotlib.pyplot as plt
import numpy as np

train_rows = [r for r in trainer.history if r["split"] == "train"]
val_rows = [r for r in trainer.history if r["split"] == "val"]
steps = np.array([r["step"] for r in train_rows])
losses = np.array([r["loss"] for r in train_rows])
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(steps, losses, color="0.75", lw=0.8, label="train (per batch)")
ax.plot(steps[9:], np.convolve(losses, np.ones(10) / 10, mode="valid"), color="C0",
        label="train (10-step mean)")
ax.plot([r["step"] for r in val_rows], [r["loss"] for r in val_rows], "o-", color="C1",
        label="validation")
ax.axhline(math.log(vocab_size), color="k", ls=":", lw=1, label="log V (uniform guess)")
ax.set(xlabel="step", ylabel="cross-entropy per character (nats)",
       title="Character-level language model of Alice in Wonderland")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Samples
# -------
# What to look for: at low temperature the model repeats its most confident patterns (common
# words, ``the``, spaces after words); at temperature 1 it invents more, with more spelling
# errors. Words, spacing and punctuation are usually right long before the sentences make
# sense. Sampling uses :func:`literate_tx.generation.generate` on a sliding window of the last
# ``max_seq_len`` characters (:func:`literate_tx.training.sample_text`); the same seed gives the
# same text. The samples are wrapped at 80 columns for display (line breaks the model wrote are
# kept).
import textwrap

from literate_tx.training import sample_text

tokenizer, model = trainer.data.codec, trainer.model
prompt = "Alice was "
for temperature in (0.5, 1.0):
    new = sample_text(model, tokenizer.encode(prompt), 160, temperature=temperature,
                      seed=0)
    print(f"--- temperature {temperature} ---")
    for line in (prompt + tokenizer.decode(new)).split("\n"):
        print(textwrap.fill(line, width=80))

# %%
# Conclusion
# ----------
# A transformer of about 110k parameters trained for a few hundred steps on one CPU has learned the
# character statistics and much of the spelling of the book. Training longer or wider lowers
# the validation loss further: ``literate-tx train --task text`` (or ``--dataset shakespeare``
# for Tiny Shakespeare, downloaded once), and ``literate-tx generate runs/text/best.npz
# --interactive`` to talk to the result. See :mod:`literate_tx.training`,
# :mod:`literate_tx.data.text` and :mod:`literate_tx.generation`.
