r"""The ``literate-tx`` command (also ``python -m literate_tx``).

Subcommands
-----------
``train``
    Train a model (:mod:`literate_tx.training`): ``--task digits`` (the default, about a minute
    on a laptop CPU with the NumPy backend) or ``--task text`` (a character-level model of the
    embedded *Alice in Wonderland*). Every :class:`~literate_tx.training.TrainConfig` field that
    matters has a flag; ``--config FILE.yaml`` reads a configuration, the flags given override
    it, and ``--save-config FILE.yaml`` writes the result and exits. ``--resume`` continues the
    run in ``--out`` exactly where it stopped (Ctrl-C saves ``last.npz`` first); a folder that
    already holds a run is refused unless ``--resume`` or ``--overwrite`` is given.
``prepare --dataset folder|jsonl|hf --data-path PATH``
    Tokenise a corpus once into a memory-mapped token file with a manifest
    (:mod:`literate_tx.data.corpus`), with a progress bar; ``train --dataset tokens
    --data-path DIR`` trains on it (``train --dataset folder ...`` prepares it by itself).
``eval CHECKPOINT``
    Recompute the metrics of a trained checkpoint: digits on the test split, text on the
    validation text.
``generate CHECKPOINT --prompt TEXT`` or ``generate --hf DIR --prompt TEXT``
    Continue a prompt (:func:`literate_tx.generation.generate` on a sliding window), with a
    trained checkpoint or a Hugging Face GPT-2 or Llama folder (:mod:`literate_tx.hf`; the
    tokenizer from GPT-2's ``vocab.json`` and ``merges.txt`` or from ``tokenizer.json``,
    :func:`literate_tx.tokenizer_json.load_hf_tokenizer`);
    ``--interactive`` reads prompts from the terminal and accepts ``temp 0.5``, ``topk 40``,
    ``topp 0.9`` and ``q`` (or ``quit``); the prompts go to stderr, so stdout holds only the
    generated text.
``inspect CHECKPOINT --prompt TEXT --out DIR``
    Plots of a trained model's attention and activations (:mod:`literate_tx.plots`).
``info``
    Versions, backends, the device and the BLAS threads.
``lab [--port N] [--root DIR] [--no-browser]``
    The interactive app (:mod:`literate_tx.lab`; needs ``pip install "literate-tx[lab]"``):
    train, watch, compare and look inside models in a web page served on 127.0.0.1.

Exit status: 0 on success, 2 for a bad flag, value, file or folder (a one-line message saying
what is wrong, never a traceback), 1 when training fails (a NaN, a failed download) or on an
internal error (set ``LITERATE_TX_TRACEBACK=1`` to see its traceback), 130 when interrupted.

Examples
--------
>>> main(["info"])  # doctest: +ELLIPSIS
literate_tx ...
0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]


class _UsageError(Exception):
    """A bad value found after parsing: reported like an argparse error, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _seed(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


#: What ``--grad-clip none`` parses to: unlike ``None`` (the flag not given) it is kept by
#: :func:`_given`, which turns it into ``None`` (clipping off) for :class:`TrainConfig`.
_OFF = "off"


def _optional_float(text: str) -> float | str:
    return _OFF if text.lower() in ("none", "off") else _float(text)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")


def _digits_range(text: str) -> int | tuple[int, int]:
    parts = text.replace(",", "-").split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a digit count; use N or LOW-HIGH, e.g. 3 or 3-6") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise argparse.ArgumentTypeError(f"{text!r}: use N or LOW-HIGH, e.g. 3 or 3-6")


_FAST_HELP = ("run the backend's speed path (true/false; the same function); default: as the "
              "checkpoint was trained (numpy, python) or false (torch)")

# literate_tx.training.config.TEXT_TOKENIZERS and literate_tx.training.recipes.RECIPES, written out
# so that building the parser imports neither (tests/test_recipes.py checks they agree)
_TOKENIZERS = ["char", "word", "bpe", "gpt2"]
_RECIPES = ["tiny", "small", "medium", "gpt2-124m"]

# flag -> (TrainConfig field, type, help); every one defaults to "not given"
_TRAIN_FLAGS: list[tuple[str, str, Any, str, dict]] = [
    ("--task", "task", str, "what to learn", {"choices": ["digits", "text"]}),
    ("--backend", "backend", str, "implementation", {"choices": ["numpy", "python", "torch"]}),
    ("--out", "out", str, "folder for metrics.jsonl, last.npz, best.npz, summary.json", {}),
    ("--steps", "steps", _positive_int, "number of optimiser updates", {}),
    ("--batch-size", "batch_size", _positive_int, "sequences per batch", {}),
    ("--seq-len", "seq_len", _positive_int, "tokens per window (text task)", {}),
    ("--lr", "lr", _float, "peak learning rate", {}),
    ("--min-lr", "min_lr", _float, "final learning rate", {}),
    ("--warmup-steps", "warmup_steps", _int, "linear warmup steps", {}),
    ("--schedule", "schedule", str, "decay after the warmup",
     {"choices": ["constant", "cosine", "linear"]}),
    ("--weight-decay", "weight_decay", _float, "AdamW decoupled weight decay", {}),
    ("--grad-clip", "grad_clip", _optional_float, "max global gradient norm ('none': off)", {}),
    ("--eval-every", "eval_every", _positive_int, "validate every N steps", {}),
    ("--eval-batches", "eval_batches", _positive_int, "validation batches (text)", {}),
    ("--checkpoint-every", "checkpoint_every", _positive_int, "write last.npz every N steps",
     {}),
    ("--seed", "seed", _int, "seed of weights, batches and dropout", {}),
    ("--dtype", "dtype", str, "floating-point type", {"choices": ["float32", "float64"]}),
    ("--device", "device", str, "torch device: auto (CUDA, else MPS, else the CPU; the "
     "default), cpu, cuda, cuda:1, mps", {}),
    ("--threads", "threads", _positive_int, "CPU threads for matrix products (default 1)", {}),
    ("--fast", "fast", _bool, "numpy, python: train with the speed path (true/false)", {}),
    ("--optimizer", "optimizer", str, "AdamW or plain SGD", {"choices": ["adamw", "sgd"]}),
    ("--grad-accum", "grad_accum", _positive_int, "micro-batches per update, their gradients "
     "summed: the update of the whole --batch-size, in less memory", {}),
    ("--amp", "amp", str, "torch: mixed precision, autocast to bfloat16 or float16 (with a "
     "GradScaler); needs --dtype float32", {"choices": ["none", "bf16", "fp16"]}),
    ("--compile", "compile", _bool, "torch: run the forward pass through torch.compile "
     "(falls back to eager where it fails)", {"nargs": "?", "const": True}),
    ("--d-model", "d_model", _positive_int, "residual width C", {}),
    ("--n-layers", "n_layers", _positive_int, "transformer blocks L", {}),
    ("--n-heads", "n_heads", _positive_int, "attention heads H (must divide d_model)", {}),
    ("--n-kv-heads", "n_kv_heads", _positive_int,
     "key/value heads G, grouped-query attention (must divide n_heads; default n_heads)", {}),
    ("--d-ff", "d_ff", _positive_int, "feed-forward width F", {}),
    ("--norm", "norm", str, "normalisation", {"choices": ["layernorm", "rmsnorm", "none"]}),
    ("--residual", "residual", str, "where the norms sit",
     {"choices": ["pre", "post", "sandwich"]}),
    ("--activation", "activation", str, "feed-forward non-linearity",
     {"choices": ["relu", "gelu", "gelu_tanh", "swish", "swiglu"]}),
    ("--position", "position", str, "position encoding",
     {"choices": ["sinusoidal", "learned", "rope", "alibi", "none"]}),
    ("--bias", "bias", _bool, "biases in linear maps and LayerNorm (true/false)", {}),
    ("--tie-embeddings", "tie_embeddings", _bool, "output head = token embedding (true/false)",
     {}),
    ("--dropout", "dropout", _float, "dropout probability in [0, 1)", {}),
    ("--n-digits", "n_digits", _digits_range, "digits per example: N or LOW-HIGH (digits)", {}),
    ("--n-train", "n_train", _int, "training examples (digits)", {}),
    ("--n-val", "n_val", _int, "validation examples (digits)", {}),
    ("--n-test", "n_test", _int, "test examples (digits)", {}),
    ("--dataset", "dataset", str, "text corpus: the embedded Alice, Tiny Shakespeare, or "
     "--data-path as a folder of .txt files, a JSONL file, a datasets dataset, or a folder "
     "written by `literate-tx prepare`",
     {"choices": ["default", "shakespeare", "folder", "jsonl", "hf", "tokens"]}),
    ("--data-path", "data_path", str, "the corpus of --dataset folder|jsonl|hf|tokens", {}),
    ("--text-field", "text_field", str, "field of the text in JSONL records or dataset rows "
     "(default 'text')", {}),
    ("--tokens-dir", "tokens_dir", str, "folder of the corpus's token file (default: in the "
     "cache, reused while its manifest matches)", {}),
    ("--tokenizer", "tokenizer", str, "text tokens (default char)", {"choices": _TOKENIZERS}),
    ("--vocab-size", "vocab_size", _positive_int, "ids of a trained word or bpe tokenizer, "
     "special tokens included (bpe: default 512)", {}),
    ("--tokenizer-file", "tokenizer_file", str, "load the tokenizer from this JSON file", {}),
    ("--recipe", "recipe", str, "named preset of model and training fields (implies --task "
     "text; other flags override it): tiny, small, medium (seed 003's beginner, intermediate, "
     "advanced), gpt2-124m (for a GPU)", {"choices": _RECIPES}),
    ("--text-file", "text_file", str, "train the text task on this UTF-8 file", {}),
    ("--val-fraction", "val_fraction", _float, "share of the text kept for validation", {}),
    ("--sample-prompt", "sample_prompt", str, "prompt of the sample in summary.json", {}),
]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise (so that ``main`` returns 2 instead of exiting)."""

    def exit(self, status: int = 0, message: str | None = None):
        """Print ``message`` to stderr and raise ``_Exit(status)`` instead of exiting."""
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


class _Exit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    r"""The argument parser of ``literate-tx`` (for documentation and shell completion).

    Examples
    --------
    >>> args = build_parser().parse_args(["train", "--task", "text", "--steps", "5"])
    >>> args.command, args.task, args.steps
    ('train', 'text', 5)
    """
    from . import __version__

    parser = _Parser(
        prog="literate-tx",
        description="Train, evaluate and sample the literate_tx transformer.",
        epilog="Run `literate-tx COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"literate_tx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a model (digits task by default)",
                       description="Train a model; flags override --config.")
    p.add_argument("--config", metavar="FILE.yaml", help="read the configuration from YAML")
    p.add_argument("--save-config", metavar="FILE.yaml",
                   help="write the resolved configuration to YAML and exit")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.npz (a larger --steps "
                   "trains the extra steps at --min-lr)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one, deleting its files")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    for flag, dest, typ, help_text, extra in _TRAIN_FLAGS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=help_text, **extra)

    p = sub.add_parser("eval", help="recompute a checkpoint's metrics",
                       description="Digits: accuracy on the test split; text: validation loss.")
    p.add_argument("checkpoint", help="a .npz written by `literate-tx train`")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="digits: which held-out split to score (text: always the validation "
                   "text)")
    p.add_argument("--backend", choices=["numpy", "python", "torch"], default="numpy",
                   help="implementation that runs the model (any backend reads any checkpoint)")
    p.add_argument("--fast", type=_bool, default=None, help=_FAST_HELP)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser("generate", help="continue a prompt with a trained model",
                       description="Sample a continuation of --prompt.")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="a .npz written by `literate-tx train` (or give --hf DIR)")
    p.add_argument("--hf", metavar="DIR", default=None,
                   help="instead of a checkpoint, a Hugging Face GPT-2 or Llama folder "
                   "(config.json, model.safetensors, and vocab.json + merges.txt or "
                   "tokenizer.json)")
    p.add_argument("--prompt", default=None, help="text to continue (default: the training "
                   "sample prompt; digits: e.g. 'Max ( 5 3 9 ) =')")
    p.add_argument("--max-new-tokens", type=_int, default=None,
                   help="tokens to append, >= 0 (characters, words or BPE tokens, as "
                   "trained); may exceed the model's context, which then slides (default: 200 "
                   "for a text model, 1 for a digits model: its answer)")
    p.add_argument("--temperature", type=_float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=_positive_int, default=None,
                   help="sample only from the K most probable tokens (default: all)")
    p.add_argument("--top-p", type=_float, default=None,
                   help="nucleus sampling, P in (0, 1]: only from the fewest most probable "
                   "tokens whose probabilities add up to at least P (default: all)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="seed of the sampling; the same seed gives the same text in every "
                   "backend (default: a new sample each run)")
    p.add_argument("--backend", choices=["numpy", "python", "torch"], default="numpy",
                   help="implementation that runs the model (any backend reads any checkpoint)")
    p.add_argument("--fast", type=_bool, default=None, help=_FAST_HELP)
    p.add_argument("--interactive", action="store_true",
                   help="read prompts from the terminal; commands: temp X, topk K, topp P, "
                   "q")

    p = sub.add_parser("inspect", help="plot a trained model's attention and activations")
    p.add_argument("checkpoint", help="a .npz written by `literate-tx train`")
    p.add_argument("--prompt", required=True,
                   help="text to run the model on, encoded with the checkpoint's tokenizer "
                   "(digits: e.g. 'Max ( 5 3 9 ) =')")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder (created if missing) for attention.png, statistics.png and "
                   "summary.txt")

    p = sub.add_parser("prepare", help="tokenise a corpus once into a memory-mapped token file",
                       description="Tokenise a folder of .txt files, a JSONL file or a datasets "
                       "dataset into tokens.bin, tokenizer.json and manifest.json; a folder "
                       "whose manifest matches the source and tokenizer is reused.")
    p.add_argument("--dataset", required=True, choices=["folder", "jsonl", "hf"],
                   help="kind of source")
    p.add_argument("--data-path", required=True, help="the folder, the .jsonl file, or the "
                   "dataset's save_to_disk folder or cached name")
    p.add_argument("--text-field", default="text", help="field of the text (jsonl, hf)")
    p.add_argument("--tokenizer", choices=_TOKENIZERS, default="char", help="text tokens")
    p.add_argument("--vocab-size", type=_positive_int, default=None,
                   help="ids of a trained word or bpe tokenizer (bpe: default 512)")
    p.add_argument("--tokenizer-file", default=None, help="load the tokenizer from this file")
    p.add_argument("--val-fraction", type=_float, default=0.1,
                   help="share of the characters, at the end, kept for validation")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder to write (default: the cache folder `train` would use)")
    p.add_argument("--force", action="store_true", help="tokenise again even if it matches")

    sub.add_parser("info", help="versions, backends, device and BLAS threads")

    from . import bench

    p = sub.add_parser("bench", help="time the backends (forward, backward, training step, "
                       "generation)", description="Benchmark the backends; writes "
                       "benchmark_results.json and report.txt into --out.")
    bench.add_arguments(p)

    p = sub.add_parser("lab", help="the interactive app: train, watch, compare, look inside",
                       description='Serve the lab on http://127.0.0.1:PORT/ (needs pip install '
                       '"literate-tx[lab]"); Ctrl-C stops it.')
    p.add_argument("--port", type=_positive_int, default=None,
                   help="TCP port on 127.0.0.1 (default: a free one)")
    p.add_argument("--root", default="runs", metavar="DIR",
                   help="folder of the run folders the app lists and creates (default: runs)")
    p.add_argument("--no-browser", action="store_true",
                   help="print the address without opening a web browser")
    return parser


# ============================================================================ train
def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = {dest: getattr(args, dest) for _, dest, *_ in _TRAIN_FLAGS
             if getattr(args, dest) is not None}
    return {dest: None if value is _OFF else value for dest, value in given.items()}


def _resolve_config(args: argparse.Namespace):
    """Defaults of the task < the --config file (or the resumed run) < the flags given."""
    from .training import TrainConfig, default_config

    flags = _given(args)
    if args.resume:
        if args.overwrite:
            raise _UsageError("--resume and --overwrite contradict each other: --resume "
                              "continues the run in --out, --overwrite deletes it; give one")
        if args.config:
            raise _UsageError("--resume takes its configuration from the run's last.npz, not "
                              "--config; drop --config (flags such as --steps still apply)")
        out = flags.get("out") or default_config(flags.get("task", "digits")).out
        path = Path(out) / "last.npz"
        if not path.is_file():
            raise _UsageError(f"--resume: no checkpoint at {path}; train without --resume first")
        from .checkpoint import read_checkpoint

        saved = read_checkpoint(path).metadata.get("train_config")
        if not isinstance(saved, dict):
            raise _UsageError(f"--resume: {path} was not written by `literate-tx train` (its "
                              "metadata field 'train_config' is missing or damaged)")
        try:
            return TrainConfig.from_dict({**saved, **flags, "out": out})
        except ValueError as exc:
            raise _UsageError(_name_the_flag(str(exc), flags, str(path))) from None
    file_fields: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise _UsageError(f"--config: no file at {path}")
        from .training.config import load_yaml_mapping

        try:
            file_fields = load_yaml_mapping(path.read_text(encoding="utf-8"), source=str(path))
        except UnicodeDecodeError:
            raise _UsageError(f"--config: {path} is not UTF-8 text") from None
        except ValueError as exc:
            raise _UsageError(f"--config: {exc}") from None
    fields = {**file_fields, **flags}
    try:
        cfg = default_config(fields.pop("task", "text" if fields.get("recipe") else "digits"),
                             **fields)
    except ValueError as exc:
        raise _UsageError(_name_the_flag(str(exc), flags, args.config)) from None
    if "warmup_steps" in fields and cfg.warmup_steps >= cfg.steps:
        where = "argument --warmup-steps: " if "warmup_steps" in flags else f"{args.config}: "
        raise _UsageError(
            f"{where}warmup_steps={cfg.warmup_steps} is not allowed with steps={cfg.steps}: "
            "the learning rate would still be rising at the last step; give warmup_steps < "
            "steps (e.g. a tenth of them)")
    return cfg


def _name_the_flag(message: str, flags: dict[str, Any], source: str | None) -> str:
    """Start a TrainConfig error with the flag (or file) that gave the field it names."""
    import re

    match = re.match(r"(?:[^:]*: )?(\w+)=", message)
    field = match.group(1) if match else None
    flag = next((f for f, dest, *_ in _TRAIN_FLAGS if dest == field), None)
    if field in flags and flag is not None:
        return f"argument {flag}: {message}"
    if source and not message.startswith(source):
        return f"{source}: {message}"
    return message


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import Trainer, format_summary

    cfg = _resolve_config(args)
    if args.save_config:
        cfg.save_yaml(args.save_config)
        print(f"wrote {args.save_config}")
        return 0
    trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
                      stream=sys.stderr)
    result = trainer.train()
    if not trainer.is_main:  # under torchrun process 0 alone reports
        return 0
    print(format_summary(result.metrics))
    names = [n for n in ("metrics.jsonl", "last.npz", "best.npz") if (trainer.out / n).exists()]
    print(f"files: {trainer.out / 'summary.json'}, {', '.join(names)}")
    return 0


# ============================================================================ eval
def _cmd_eval(args: argparse.Namespace) -> int:
    from .training import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, backend=args.backend, split=args.split,
                                  fast=args.fast)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    where = "validation text" if "perplexity" in metrics else f"{args.split} split"
    print(f"{args.checkpoint} ({where}):")
    for key, value in metrics.items():
        if isinstance(value, dict):
            for op, acc in value.items():
                print(f"  {op:<10}{acc:8.2%}")
        elif key in ("exact_match", "accuracy"):
            print(f"{key:<12}{value:8.2%}")
        else:
            print(f"{key:<12}{value:10.4f}")
    return 0


# ============================================================================ generate
def _continue(model, tokenizer, prompt: str, opts: dict[str, Any]) -> str:
    from .tokenizers import Tokenizer
    from .training import DigitsCodec, sample_text

    # Llama's own pipeline starts every text with <s>; its model expects it
    bos = isinstance(tokenizer, Tokenizer) and tokenizer.bos_by_default
    ids = tokenizer.encode(prompt, add_bos=True) if bos else tokenizer.encode(prompt)
    if len(ids) == int(bos):
        raise _UsageError(f"argument --prompt: {prompt!r} encodes to no tokens; give at least "
                          "one character")
    new = sample_text(model, ids, opts["max_new_tokens"], temperature=opts["temperature"],
                      top_k=opts["top_k"], top_p=opts["top_p"], seed=opts["seed"])
    if isinstance(tokenizer, DigitsCodec):
        return f"{prompt} {tokenizer.decode(new)}"
    # The continuation is decoded after the prompt, not alone: a token may depend on what
    # precedes it (SentencePiece drops the space that opens a text; one character's bytes
    # may straddle the prompt's end).
    head, full = tokenizer.decode(ids), tokenizer.decode(ids + new)
    return prompt + (full[len(head):] if full.startswith(head) else tokenizer.decode(new))


def _load_hf_folder(folder: str, backend: str, fast: bool | None):
    """A Hugging Face folder's model in ``backend`` and its tokenizer (GPT-2's or Llama's)."""
    from .api import create_model
    from .hf import load_hf
    from .tokenizer_json import load_hf_tokenizer

    cfg, params = load_hf(folder)
    tokenizer = load_hf_tokenizer(folder)
    if tokenizer.vocab_size > cfg.vocab_size:
        raise _UsageError(f"{folder}: the tokenizer has {tokenizer.vocab_size} ids but the "
                          f"model only {cfg.vocab_size}")
    dtype = "float64" if any(v.dtype == "float64" for v in params.values()) else "float32"
    return create_model(cfg, backend, params=params, dtype=dtype, fast=bool(fast)), tokenizer


def _cmd_generate(args: argparse.Namespace) -> int:
    from .training import load_trained

    if (args.hf is None) == (args.checkpoint is None):
        raise _UsageError("give either a CHECKPOINT or --hf DIR")
    if args.hf is not None:
        if args.prompt is None and not args.interactive:
            raise _UsageError("--hf needs --prompt TEXT (or --interactive)")
        model, tokenizer = _load_hf_folder(args.hf, args.backend, args.fast)
        tcfg = None
    else:
        model, tokenizer, tcfg, _ = load_trained(args.checkpoint, backend=args.backend,
                                                 fast=args.fast)
    if tokenizer is None:
        raise _UsageError(f"{args.checkpoint} holds no tokenizer; it was not written by "
                          "`literate-tx train`")
    max_new = args.max_new_tokens
    if max_new is None:  # a digits model answers with one token; what follows is untrained
        max_new = 1 if tcfg is not None and tcfg.task == "digits" else (
            50 if args.hf else 200)
    opts = dict(max_new_tokens=max_new, temperature=args.temperature,
                top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    if opts["max_new_tokens"] < 0:
        raise _UsageError(f"--max-new-tokens={opts['max_new_tokens']} must be >= 0")
    if not args.interactive:
        prompt = args.prompt
        if prompt is None:
            prompt = tcfg.sample_prompt if tcfg and tcfg.task == "text" else "Max ( 5 3 9 ) ="
        print(_continue(model, tokenizer, prompt, opts))
        return 0
    return _interactive(model, tokenizer, opts)


def _temperature(text: str) -> float:
    value = float(text)
    if not (value >= 0 and value != float("inf")):
        raise ValueError("give a number >= 0 (0: greedy)")
    return value


def _top_k(text: str) -> int | None:
    value = int(text)
    if value < 0:
        raise ValueError("give an int >= 1, or 0 for off")
    return value or None


def _top_p(text: str) -> float | None:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError("give a number in (0, 1], 1 for off")
    return None if value == 1 else value


#: interactive command -> (generation option, parser that raises ValueError on a bad value)
_COMMANDS = {"temp": ("temperature", _temperature), "topk": ("top_k", _top_k),
             "topp": ("top_p", _top_p)}


def _interactive(model, tokenizer, opts: dict[str, Any]) -> int:
    # prompts and messages go to stderr: stdout holds the generated text alone
    print("literate-tx generate: type a prompt; commands: temp X, topk K (0: off), "
          "topp P (1: off), q to quit", file=sys.stderr)
    while True:
        sys.stderr.write("> ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:  # end of input
            return 0
        line = line.rstrip("\r\n")
        words = line.split()
        if words and words[0] in ("q", "quit", "exit") and len(words) == 1:
            return 0
        if words and words[0] in _COMMANDS:
            key, parse = _COMMANDS[words[0]]
            try:
                if len(words) != 2:
                    raise ValueError(f"give one value, e.g. {words[0]} 1")
                value = parse(words[1])  # checked before it replaces the old value
            except ValueError as exc:
                reason = str(exc) if not str(exc).startswith(("could not", "invalid")) \
                    else "not a number"
                print(f"{words[0]}: {' '.join(words[1:])!r} is not allowed ({reason}); "
                      f"{key} stays {opts[key]}", file=sys.stderr)
                continue
            opts[key] = value
            print(f"{key} = {value}", file=sys.stderr)
            continue
        if not line:
            continue
        try:
            print(_continue(model, tokenizer, line, opts), flush=True)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)


# ============================================================================ inspect
def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspection import inspect_checkpoint

    result = inspect_checkpoint(args.checkpoint, args.prompt, args.out)
    paths = result if isinstance(result, (list, tuple)) else []
    for path in paths:
        print(f"wrote {path}")
    if not paths:
        print(f"wrote plots to {args.out}")
    return 0


# ============================================================================ prepare
def _cmd_prepare(args: argparse.Namespace) -> int:
    from .data.corpus import CorpusSource, prepare_corpus

    vocab_size = args.vocab_size
    if args.tokenizer == "bpe" and vocab_size is None and args.tokenizer_file is None:
        vocab_size = 512  # TrainConfig's default, so that `train` finds the same folder
    if args.tokenizer == "char" and vocab_size is not None:
        raise _UsageError("--vocab-size is not allowed with --tokenizer char, whose vocabulary "
                          "is the characters of the text")
    if not 0.0 < args.val_fraction < 1.0:
        raise _UsageError(f"--val-fraction={args.val_fraction} must be in (0, 1)")
    source = CorpusSource(args.dataset, args.data_path, args.text_field)
    corpus = prepare_corpus(source, args.out, tokenizer=args.tokenizer, vocab_size=vocab_size,
                            tokenizer_file=args.tokenizer_file, val_fraction=args.val_fraction,
                            force=args.force, progress=sys.stderr)
    m = corpus.manifest
    print(f"{corpus.folder}: {m['n_tokens']:,} tokens ({m['n_train_tokens']:,} for training), "
          f"{m['dtype']}, {m['tokenizer']['kind']} tokenizer with {m['tokenizer']['vocab_size']} "
          f"ids{' (reused)' if corpus.reused else ''}")
    print(f"train on it: literate-tx train --task text --dataset tokens --data-path "
          f"{corpus.folder} --tokenizer {m['tokenizer']['kind']}")
    return 0


# ============================================================================ info
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from . import __version__
    from .api import available_backends

    print(f"literate_tx {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"numpy       {np.__version__}")
    try:
        import torch
    except ImportError:
        torch = None
        print("torch       not installed (pip install -e '.[torch]' torch==2.13.0)")
    else:
        print(f"torch       {torch.__version__}")
    print(f"backends    {', '.join(available_backends())}")
    print(f"cpu         {_cpu_name()} ({os.cpu_count()} logical cores)")
    if torch is not None and torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        print(f"device      CUDA: {', '.join(names)}")
    else:
        print("device      CPU (no CUDA GPU visible to torch)" if torch is not None
              else "device      CPU")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        print("blas        threadpoolctl not installed (pip install threadpoolctl)")
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        for pool in pools or [{}]:
            if pool:
                print(f"blas        {pool.get('internal_api')} {pool.get('version')}, "
                      f"{pool.get('num_threads')} threads")
            else:
                print("blas        none found")
    if torch is not None:
        print(f"torch cpu   {torch.get_num_threads()} threads")
    return 0


# ============================================================================ bench
def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.run(args)


# ============================================================================ lab
def _cmd_lab(args: argparse.Namespace) -> int:
    from . import lab

    if args.port is not None and args.port > 65535:
        raise _UsageError(f"argument --port: {args.port} is not a TCP port (1 to 65535)")
    try:
        return lab.launch(args.port, root=args.root, browser=not args.no_browser)
    except ImportError as exc:
        print(f"literate-tx lab: {exc}", file=sys.stderr)
        return 1


# ============================================================================ main
def main(argv: Sequence[str] | None = None) -> int:
    r"""Run ``literate-tx`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Examples
    --------
    >>> main(["train", "--steps", "-3"])
    2
    >>> main(["info"])  # doctest: +ELLIPSIS
    literate_tx ...
    0
    """
    from .data.text import DownloadError
    from .training import NonFiniteError

    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except _Exit as exc:
        return exc.status
    if args.command is None:
        parser.print_help()
        return 2
    commands = {"train": _cmd_train, "prepare": _cmd_prepare,
                "eval": _cmd_eval, "generate": _cmd_generate,
                "inspect": _cmd_inspect, "info": _cmd_info, "bench": _cmd_bench,
                "lab": _cmd_lab}
    prog = f"literate-tx {args.command}"
    try:
        out = getattr(args, "out", None)  # inspect, bench, prepare: checked before the work
        if args.command != "train" and isinstance(out, str):  # (train: by the Trainer)
            _check_out_folder("--out", out)
        return commands[args.command](args)
    except DownloadError as exc:  # an OSError, but not the user's: checked first
        print(f"{prog}: failed: {exc}\n(on the command line: --text-file /path/to/input.txt)",
              file=sys.stderr)
        return 1
    except (_UsageError, ValueError, OSError, ImportError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prog}: error: out of memory; reduce --batch-size, --seq-len or the model's "
              "size", file=sys.stderr)
        return 2
    except NonFiniteError as exc:
        print(f"{prog}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("LITERATE_TX_TRACEBACK"):
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (please report it; "
              "LITERATE_TX_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


def _check_out_folder(flag: str, folder: str) -> None:
    """Refuse an output folder that cannot be made or written, before any work is done."""
    import tempfile

    path = Path(folder)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise _UsageError(f"argument {flag}: {folder}: {blocker} is a file, not a folder")
    existing = next(p for p in (path, *path.parents, Path(".")) if p.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise _UsageError(f"argument {flag}: {folder}: cannot write in {existing} "
                          f"({exc.strerror or exc})") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
