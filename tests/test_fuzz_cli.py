"""Fuzz: random bad values into the ``literate-tx`` command and the public API.

Every bad input must end in one of two ways: exit status 2 with a message naming the flag or
field (command line), or a documented exception (``ValueError``, ``TypeError``, ``OSError``)
naming the field or file (API); never a traceback, never a silently accepted value, and no
file of an existing run changed. Each input's outcome is counted; the counts are printed at
the end of the module (``pytest tests/test_fuzz_cli.py``, no ``-s`` needed) as

    fuzz: 769 bad inputs: 769 clear, 0 obscure, 0 traceback, 0 accepted, 0 data changed

where *clear* is the only outcome the tests accept: *obscure* is an error that names neither
the flag nor the field, *traceback* an exception that escaped (or an internal error),
*accepted* an exit status 0 or no exception, *data changed* a run's file modified.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import math
import string
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from literate_tx import read_checkpoint, save_checkpoint  # noqa: E402
from literate_tx.cli import main  # noqa: E402
from literate_tx.training import TrainConfig, Trainer, load_trained  # noqa: E402

OUTCOMES = ("clear", "obscure", "traceback", "accepted", "data changed")
COUNTS: collections.Counter = collections.Counter()  # outcome -> inputs
SURFACES: collections.Counter = collections.Counter()  # command or API -> inputs
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

TINY = ["--steps", "4", "--batch-size", "4", "--d-model", "16", "--n-layers", "1",
        "--n-heads", "2", "--d-ff", "32", "--n-digits", "3", "--n-train", "60", "--n-val",
        "10", "--n-test", "10", "--warmup-steps", "1", "--eval-every", "2", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print the outcome counts once the module's tests are done (visible without ``-s``)."""
    yield
    total = sum(COUNTS.values())
    if not total:
        return
    line = (f"fuzz: {total} bad inputs: "
            + ", ".join(f"{COUNTS[o]} {o}" for o in OUTCOMES)
            + " | by surface: " + ", ".join(f"{s} {n}" for s, n in sorted(SURFACES.items())))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # straight to the terminal, even without -s
        print(f"\n{line}")




def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def _cli(surface: str, argv: list[str], names: tuple[str, ...], run: Path, capsys) -> str:
    """Run ``main(argv)``, classify and count the outcome; return it."""
    before = _snapshot(run)
    capsys.readouterr()
    try:
        code = main(argv)
    except BaseException as exc:
        code, err = None, f"{type(exc).__name__}: {exc}"
    else:
        err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if _snapshot(run) != before:
        outcome = "data changed"
    elif code is None or "Traceback" in err or "internal error" in err:
        outcome = "traceback"
    elif code == 0:
        outcome = "accepted"
    elif code == 2 and ": error: " in last and any(n in last for n in names):
        outcome = "clear"
    else:
        outcome = "obscure"
    COUNTS[outcome] += 1
    SURFACES[surface] += 1
    assert outcome == "clear", (argv, code, err)
    return outcome


# ------------------------------------------------------------------------------ bad values
_JUNK = st.text(alphabet=string.ascii_letters + "!?#%&*~ ", min_size=1, max_size=8).filter(
    lambda s: s.strip().lower() not in ("none", "off", "inf", "nan", "infinity", "true",
                                        "false", "yes", "no", "on", "1", "0"))
_NON_FINITE = st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity"])


def _ints(high: int) -> st.SearchStrategy[str]:
    """Bad values for an int flag that needs >= high + 1."""
    return st.one_of(st.integers(max_value=high).map(str), _JUNK,
                     st.floats(0.1, 1e6).map(lambda f: f"{f:.2f}"))


def _floats(low: float | None = None, high: float | None = None) -> st.SearchStrategy[str]:
    """Bad values for a float flag: below low, at or above high, non-finite, not numbers."""
    options = [_JUNK, _NON_FINITE]
    if low is not None:
        options.append(st.floats(-1e6, low, exclude_max=True).map(repr))
    if high is not None:
        options.append(st.floats(high, 1e6).map(repr))
    return st.one_of(*options)


#: top_p is allowed in (0, 1]
_TOP_P = st.one_of(_JUNK, _NON_FINITE, st.floats(-1e6, 0.0).map(repr),
                   st.floats(1.0, 1e6, exclude_min=True).map(repr))


def _not_in(choices) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.ascii_letters + "0123456789_-:", min_size=1,
                   max_size=10).filter(lambda s: s not in choices and not s.startswith("-"))


#: flag -> strategy of values that must be refused (with the default digits task, numpy)
TRAIN_BAD = {
    "--steps": _ints(0), "--batch-size": _ints(0), "--eval-every": _ints(0),
    "--eval-batches": _ints(0), "--checkpoint-every": _ints(0), "--threads": _ints(0),
    "--d-model": _ints(0), "--n-layers": _ints(0), "--n-heads": _ints(0), "--d-ff": _ints(0),
    "--seq-len": _ints(1), "--warmup-steps": _ints(-1), "--seed": _ints(-1),
    "--n-train": _ints(-1), "--n-val": _ints(0), "--n-test": _ints(-1),
    "--lr": _floats(0.0), "--min-lr": st.one_of(_floats(0.0), st.floats(0.0031, 1e3).map(repr)),
    "--weight-decay": _floats(0.0), "--grad-clip": _floats(0.0),
    "--dropout": _floats(0.0, 1.0), "--val-fraction": _floats(0.0, 1.0),
    "--task": _not_in(["digits", "text"]), "--backend": _not_in(["numpy", "python", "torch"]),
    "--schedule": _not_in(["constant", "cosine", "linear"]),
    "--dtype": _not_in(["float32", "float64"]),
    "--norm": _not_in(["layernorm", "rmsnorm", "none"]),
    "--residual": _not_in(["pre", "post", "sandwich"]),
    "--activation": _not_in(["relu", "gelu", "gelu_tanh", "swish", "swiglu"]),
    "--position": _not_in(["sinusoidal", "learned", "rope", "alibi", "none"]),
    "--dataset": _not_in(["default", "shakespeare"]),
    "--fast": _JUNK, "--bias": _JUNK, "--tie-embeddings": _JUNK,
    "--n-digits": st.one_of(_JUNK, st.integers(max_value=0).map(str),
                            st.tuples(st.integers(2, 9), st.integers(1, 9)).filter(
                                lambda t: t[0] > t[1]).map(lambda t: f"{t[0]}-{t[1]}")),
    "--device": st.sampled_from(["cuda", "cuda:1", "gpu", "tpu", "mps", "cuda:0"]),
    "--text-file": st.sampled_from(["/etc/hostname", "corpus.txt", "/nonexistent.txt"]),
    "--out": st.sampled_from(["RUN/last.npz", "RUN/summary.json/sub", "RUN", ""]),
}


@FUZZ
@given(data=st.data())
def test_train_flags(run, capsys, data):
    flag = data.draw(st.sampled_from(sorted(TRAIN_BAD)), label="flag")
    value = data.draw(TRAIN_BAD[flag], label="value").replace("RUN", str(run))
    argv = ["train", *TINY, "--out", str(run), f"{flag}={value}"]
    names = (flag, flag[2:].replace("-", "_"), "already holds a run")
    if flag == "--min-lr":
        names += ("--lr",)
    if flag == "--out" and value == str(run):  # a valid folder that holds a run
        names = ("already holds a run",)
    _cli("train", argv, names, run, capsys)


@FUZZ
@given(data=st.data())
def test_train_resume_with_bad_values(run, capsys, data):
    flag = data.draw(st.sampled_from(["--steps", "--lr", "--d-model", "--seed", "--batch-size",
                                      "--overwrite", "--config"]), label="flag")
    if flag == "--steps":
        value = data.draw(st.integers(1, 3), label="fewer steps than done")
        argv, names = ["--steps", str(value)], ("steps=",)
    elif flag == "--overwrite":
        argv, names = ["--overwrite"], ("--overwrite",)
    elif flag == "--config":
        argv, names = ["--config", "x.yaml"], ("--config",)
    else:
        value = data.draw(st.integers(1, 7).map(lambda i: str(i * 3 + 50)), label="changed")
        argv, names = [flag, value], (flag[2:].replace("-", "_"),)
    _cli("resume", ["train", "--resume", "--out", str(run), *argv], names, run, capsys)


@FUZZ
@given(data=st.data())
def test_config_files(run, capsys, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["duplicate", "unknown", "bad value", "not a mapping",
                                      "not yaml"]), label="kind")
    field = data.draw(st.sampled_from(["steps", "lr", "batch_size", "seed", "dropout"]),
                      label="field")
    if kind == "duplicate":
        text, names = f"{field}: 1\nd_model: 16\n{field}: 2\n", (f"key '{field}'",)
    elif kind == "unknown":
        name = data.draw(st.text(alphabet="abcxyz_", min_size=3, max_size=8).filter(
            lambda s: s not in {f.name for f in dataclasses.fields(TrainConfig)}), label="key")
        text, names = f"{name}: 1\n", (repr(name),)
    elif kind == "bad value":
        value = data.draw(st.sampled_from(["-3", "[1, 2]", "{a: 1}", "'x'", "nan", ".inf",
                                           "true"]), label="value")
        if field == "dropout" and value == "true":
            value = "2"
        text, names = f"{field}: {value}\n", (f"{field}=",)
    elif kind == "not a mapping":
        text, names = data.draw(st.sampled_from(["- 1\n- 2\n", "42\n", "just text\n"])), (
            "mapping",)
    else:
        text, names = data.draw(st.sampled_from(["steps: [\n", "a: b: c\n", "\t- x\n"])), (
            "not valid YAML",)
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text)
    _cli("config", ["train", "--config", str(path), "--out", str(run)], names, run, capsys)


GENERATE_BAD = {
    "--temperature": _floats(0.0), "--top-k": _ints(0), "--top-p": _TOP_P,
    "--max-new-tokens": st.one_of(st.integers(max_value=-1).map(str), _JUNK),
    "--backend": _not_in(["numpy", "python", "torch"]), "--fast": _JUNK, "--seed": _ints(-1),
}


@FUZZ
@given(data=st.data())
def test_generate_and_eval(run, capsys, data):
    command = data.draw(st.sampled_from(["generate", "eval"]), label="command")
    flags = GENERATE_BAD if command == "generate" else {
        "--split": _not_in(["test", "val"]), "--backend": _not_in(["numpy", "python", "torch"]),
        "--fast": _JUNK}
    flag = data.draw(st.sampled_from(sorted(flags)), label="flag")
    value = data.draw(flags[flag], label="value")
    names = (flag, flag[2:].replace("-", "_"))
    if flag == "--top-p":
        names += ("top_p",)
    _cli(command, [command, str(run / "last.npz"), f"{flag}={value}"], names, run, capsys)


@FUZZ
@given(data=st.data())
def test_checkpoint_paths(run, capsys, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["missing", "folder", "text", "bytes", "truncated",
                                      "pickle", "object array"]), label="kind")
    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "c.npz"
    if kind == "missing":
        path = folder / "missing.npz"
    elif kind == "folder":
        path = folder
    elif kind == "text":
        path.write_text(data.draw(st.text(min_size=0, max_size=40), label="text"))
    elif kind == "bytes":
        path.write_bytes(data.draw(st.binary(min_size=0, max_size=200), label="bytes"))
    elif kind == "truncated":
        raw = (run / "last.npz").read_bytes()
        cut = data.draw(st.integers(1, len(raw) - 1), label="cut")
        path.write_bytes(raw[:cut])
    elif kind == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"weights": [1, 2]}))
    else:
        np.savez(path, **{"meta.json": np.array([{"a": 1}], dtype=object)})
    command = data.draw(st.sampled_from(["eval", "generate", "inspect"]), label="command")
    argv = [command, str(path)]
    if command == "inspect":
        argv += ["--prompt", "Max ( 1 2 3 ) =", "--out", str(folder / "plots")]
    _cli("checkpoint", argv, (str(path),), run, capsys)


@FUZZ
@given(data=st.data())
def test_interactive_settings(run, capsys, monkeypatch, data):
    command = data.draw(st.sampled_from(["temp", "topk", "topp"]), label="command")
    bad = {"temp": _floats(0.0), "topk": st.one_of(st.integers(max_value=-1).map(str), _JUNK),
           "topp": _TOP_P}[command]
    value = data.draw(bad, label="value")
    lines = f"temp 0\ntopk 2\ntopp 0.5\n{command} {value}\nq\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    before = _snapshot(run)
    capsys.readouterr()
    code = main(["generate", str(run / "last.npz"), "--interactive"])
    err = capsys.readouterr().err
    key = {"temp": "temperature", "topk": "top_k", "topp": "top_p"}[command]
    old = {"temp": "0.0", "topk": "2", "topp": "0.5"}[command]
    shown = " ".join(value.split())  # as the command line splits it
    ok = (code == 0 and f"{command}: {shown!r} is not allowed" in err
          and f"{key} stays {old}" in err and "Traceback" not in err and _snapshot(run) == before)
    COUNTS["clear" if ok else "obscure"] += 1
    SURFACES["interactive"] += 1
    assert ok, err


# ------------------------------------------------------------------------------ the API
#: TrainConfig field -> values that must raise ValueError naming it
API_BAD = {
    "steps": [0, -1, 1.5, "10", True, None], "batch_size": [0, 2.0, "4"],
    "seq_len": [1, 0, -3, 2.5], "lr": [-1.0, math.nan, math.inf, "0.1", None, True],
    "min_lr": [-0.1, math.nan], "warmup_steps": [-1, 0.5], "seed": [-1, "0", 1.0],
    "dropout": [1.0, -0.1, math.nan, "0.1"], "val_fraction": [1.0, -0.5, math.nan],
    "task": ["images", 1, None], "backend": ["jax", None], "dtype": ["float16", 32],
    "schedule": ["step", None], "out": ["", 3, None], "device": ["cuda", "gpu"],
    "fast": ["yes", 1, None], "bias": ["true", 0], "n_heads": [3, 0],
    "grad_clip": [-1.0, math.nan, "1"], "n_digits": [0, (5, 3), "3", [1, 2, 3]],
    "text_file": ["x.txt", 5], "beta1": [1.0, -0.1], "eps": [-1e-8, math.inf],
}


@FUZZ
@given(data=st.data())
def test_train_config_api(data):
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    field = data.draw(st.sampled_from(sorted(set(API_BAD) & known)), label="field")
    value = data.draw(st.sampled_from(API_BAD[field]), label="value")
    try:
        TrainConfig(**{field: value})
    except (ValueError, TypeError) as exc:
        outcome = "clear" if f"{field}=" in str(exc) else "obscure"
    except Exception:
        outcome = "traceback"
    else:
        outcome = "accepted"
    COUNTS[outcome] += 1
    SURFACES["TrainConfig"] += 1
    assert outcome == "clear", (field, value)


def _plausible(field: str, value) -> bool:
    """A value of the field's type and range (a different but possible state, not damage)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {"step": number and isinstance(value, int) and value >= 0,
            "schedule_steps": number and isinstance(value, int) and value >= 1,
            "elapsed": number and value >= 0,
            "best": value is None,
            "train_config": value == {}}.get(field, False)  # {}: a TrainConfig of defaults


def _rewrite(src: Path, dst: Path, meta: dict) -> Path:
    ckpt = read_checkpoint(src)
    dst.mkdir(exist_ok=True)
    save_checkpoint(dst / "last.npz", ckpt.config, ckpt.params, state=ckpt.state, metadata=meta)
    return dst / "last.npz"


_META_BAD = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.just([]),
                      st.just({}), st.just({"bit_generator": "PCG64"}), st.floats())


@settings(FUZZ, max_examples=60)  # each example writes a checkpoint and builds a Trainer
@given(data=st.data())
def test_damaged_metadata_api(run, tmp_path_factory, data):
    field = data.draw(st.sampled_from(["step", "rng", "best", "train_config", "tokenizer",
                                       "elapsed", "schedule_steps"]), label="field")
    drop = data.draw(st.booleans(), label="drop") and field in ("step", "rng", "train_config")
    meta = dict(read_checkpoint(run / "last.npz").metadata)
    if drop:
        del meta[field]
    else:
        meta[field] = data.draw(_META_BAD.filter(lambda v: not _plausible(field, v)),
                                label="value")
    path = _rewrite(run / "last.npz", tmp_path_factory.mktemp("meta"), meta)
    cfg = TrainConfig.from_dict({**read_checkpoint(run / "last.npz").metadata["train_config"],
                                 "out": str(path.parent), "steps": 8})
    reader = data.draw(st.sampled_from(["resume", "load_trained"]), label="reader")
    try:
        if reader == "resume":
            Trainer(cfg, resume=True, quiet=True)
        else:
            load_trained(path)
    except (ValueError, TypeError, OSError) as exc:
        named = str(path) in str(exc) and (field in str(exc) or "not written by" in str(exc))
        outcome = "clear" if named else "obscure"
    except Exception:
        outcome = "traceback"
    else:
        # accepted without harm only where the reader does not use the field: load_trained
        # reads no training state, a digits resume rebuilds its tokenizer from the config
        # (load_trained documents a checkpoint without train_config: it returns None for it)
        unused = (reader == "load_trained" and (drop or field not in ("train_config",
                                                                     "tokenizer"))) or (
            reader == "resume" and field == "tokenizer")
        outcome = "clear" if unused else "accepted"
    COUNTS[outcome] += 1
    SURFACES["metadata"] += 1
    assert outcome == "clear", (reader, field, meta.get(field, "<dropped>"))


@FUZZ
@given(data=st.data())
def test_output_paths_api(run, tmp_path_factory, data):
    from literate_tx.checkpoint import atomic_write

    folder = tmp_path_factory.mktemp("paths")
    (folder / "file").write_text("x")
    target = data.draw(st.sampled_from(["folder", "file/sub", "file/sub/deeper.npz"]),
                       label="target")
    path = folder if target == "folder" else folder / target
    api = data.draw(st.sampled_from(["atomic_write", "save_yaml", "Trainer"]), label="api")
    try:
        if api == "atomic_write":
            atomic_write(path, lambda f: f.write(b"x"))
        elif api == "save_yaml":
            TrainConfig().save_yaml(path)
        else:
            out = folder / "file" if target == "folder" else path
            Trainer(TrainConfig(out=str(out)), quiet=True)
    except (OSError, ValueError) as exc:
        outcome = "clear" if str(folder) in str(exc) else "obscure"
    except Exception:
        outcome = "traceback"
    else:
        outcome = "accepted"
    COUNTS[outcome] += 1
    SURFACES["paths"] += 1
    assert outcome == "clear", (api, target)
    assert json.loads(json.dumps(sorted(p.name for p in folder.iterdir()))) == ["file"]
