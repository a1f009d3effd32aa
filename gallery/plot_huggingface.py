"""
Opening a Hugging Face model folder
===================================

A model published on the Hugging Face Hub is a folder: ``config.json`` (the architecture),
``model.safetensors`` (the weights) and, for GPT-2, the tokenizer's ``vocab.json`` and
``merges.txt``. :func:`~literate_tx.hf.load_hf` reads such a folder into a
:class:`~literate_tx.config.ModelConfig` and the canonical parameters that every backend accepts,
and :class:`~literate_tx.tokenizers.GPT2Tokenizer` reads the tokenizer. This example builds a
small GPT-2 folder (there is no network on the machine that builds this site, so no real
checkpoint is downloaded), opens it, looks at its attention with ``run_with_cache``, and then
runs it one token at a time in the pure-Python backend.

The weights are random: the point is the route from a folder to every backend, not what the
model knows. With a real GPT-2 folder (``save_pretrained`` of ``openai-community/gpt2``) every
line below runs unchanged.
"""

# %%
# A GPT-2 folder
# --------------
# If ``transformers`` is installed, ``GPT2LMHeadModel.save_pretrained`` writes the folder, as it
# would for any published model; otherwise :func:`~literate_tx.hf.save_hf` writes the same
# files. The tokenizer is a byte-level BPE trained on the first pages of *Alice in Wonderland*
# and written in GPT-2's own file format.
import json
import tempfile
from importlib.resources import files
from pathlib import Path

import numpy as np

import literate_tx as ltx
from literate_tx.hf import load_hf, mapping_rules, save_hf
from literate_tx.tokenizers import BPETokenizer, GPT2Tokenizer

folder = Path(tempfile.mkdtemp()) / "tiny-gpt2"
alice = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
bpe = BPETokenizer.train(alice[:20000], vocab_size=400, special_tokens=["<|endoftext|>"])
GPT2Tokenizer.from_bpe(bpe).save_files(folder)

try:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging
except ImportError:
    cfg = ltx.gpt2_config(vocab_size=bpe.vocab_size, d_model=32, n_layers=2, n_heads=4,
                          max_seq_len=64, init_std=0.3)
    save_hf(ltx.create_model(cfg, seed=0), folder)
    written_by = "literate_tx.hf.save_hf"
else:
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    end_of_text = bpe.vocab_size - 1  # <|endoftext|>, the last id, as in GPT-2
    hf_model = GPT2LMHeadModel(GPT2Config(vocab_size=bpe.vocab_size, n_embd=32, n_layer=2,
                                          n_head=4, n_positions=64, initializer_range=0.3,
                                          bos_token_id=end_of_text, eos_token_id=end_of_text))
    hf_model.save_pretrained(folder)
    written_by = "transformers' save_pretrained"

print(f"written by {written_by}:", sorted(p.name for p in folder.iterdir()))
hf_config = json.loads((folder / "config.json").read_text())
print({k: hf_config[k] for k in ("model_type", "n_embd", "n_layer", "n_head", "n_positions",
                                 "activation_function", "tie_word_embeddings")})

# %%
# Loading it
# ----------
# ``load_hf`` translates ``config.json`` into a :class:`~literate_tx.config.ModelConfig` (GPT-2's
# ``gelu_new`` is our ``"gelu_tanh"``, a missing ``n_inner`` means ``4C``) and renames the
# tensors. GPT-2 fuses the query, key and value maps into one ``c_attn`` of width ``3C``; it is
# cut into three ``(C, C)`` blocks. The first rules of the mapping, with the shapes on each
# side:
cfg, params = load_hf(folder, dtype="float64")
print(cfg)
tokenizer = GPT2Tokenizer.from_folder(folder)

from literate_tx.hf import read_safetensors

stored = read_safetensors(folder / "model.safetensors")  # the tensors by their GPT-2 names
for rule in mapping_rules("gpt2")[:7]:
    hf_name = rule.hf.format(i=0)
    ours = [o.format(i=0) for o in rule.ours]
    print(f"{hf_name:<35} {str(stored[hf_name].shape):<9} {rule.how:<5} -> "
          + ", ".join(f"{o} {params[o].shape}" for o in ours))

# %%
# Attention, with ``run_with_cache``
# ----------------------------------
# ``run_with_cache`` returns the logits and every intermediate value by hook name; the
# attention weights of block ``i`` are ``blocks.{i}.attn.weights``, of shape ``(B, H, T, T)``.
# Each row is a query position and sums to one over the keys it may see (the causal mask
# leaves the upper triangle at zero). With random weights the heads spread their attention
# almost evenly; a trained model's heads each pick their own pattern.
from literate_tx.plots import plot_attention

model = ltx.create_model(cfg, backend="numpy", params=params, dtype="float64")
prompt = "Alice was beginning to get very tired"
ids = tokenizer.encode(prompt)
labels = [tokenizer.decode([i]) for i in ids]
print(len(ids), "tokens:", labels)
logits, cache = model.run_with_cache([ids])
weights = cache["blocks.0.attn.weights"]
print("blocks.0.attn.weights", weights.shape, "row sums", np.round(weights.sum(-1)[0, 0], 12))
fig = plot_attention(cache, labels, title="attention of the loaded model (random weights)")

# %%
# Stepping it in pure Python
# --------------------------
# The same parameters load into the pure-Python backend, which computes with lists of floats.
# ``decode`` feeds the prompt once and then one token per step, reusing the keys and values of
# earlier positions (the KV cache). Greedy decoding picks the arg-max each step; the NumPy
# model's logits for the whole sequence agree with every step's to round-off. The tokens are
# printed as ``vocab.json`` spells them: ``Ġ`` is GPT-2's character for a leading space.
python_model = ltx.create_model(cfg, backend="python", params=params, dtype="float64")
step_logits, kv = python_model.decode(np.array([ids]))
sequence = list(ids)
for step in range(6):
    next_id = int(np.argmax(step_logits[0, -1]))
    full = model.forward([sequence])[0, -1]  # NumPy, the whole sequence again
    gap = float(np.max(np.abs(full - step_logits[0, -1])))
    print(f"step {step}: next token {next_id:>3} {tokenizer.token(next_id)!r:<8} "
          f"|python cached - numpy full| = {gap:.1e}")
    sequence.append(next_id)
    step_logits, kv = python_model.decode(np.array([[next_id]]), kv)
print("continuation:", [tokenizer.token(i) for i in sequence[len(ids):]])

# %%
# Conclusion
# ----------
# :func:`~literate_tx.hf.load_hf` and :func:`~literate_tx.hf.save_hf` move GPT-2 and Llama
# models (grouped-query attention included) between Hugging Face folders and every backend;
# the mapping table is on the API page of :mod:`literate_tx.hf`, and the
# :doc:`Hugging Face page </huggingface>` compares the result with ``transformers`` itself. On
# the command line, ``literate-tx generate --hf FOLDER --prompt "..." --backend python`` does
# what the last cell did.
