"""Reliability: no lost run, no traceback, clear errors for the bad inputs a user can type.

Each test names the promise it checks; the random version of the same promises is
``tests/test_fuzz_cli.py``.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import literate_tx as ltx
from literate_tx.checkpoint import atomic_write, read_checkpoint, save_checkpoint
from literate_tx.cli import main
from literate_tx.training import NonFiniteError, TrainConfig, Trainer, train

TINY = ["--steps", "4", "--batch-size", "4", "--d-model", "16", "--n-layers", "1",
        "--n-heads", "2", "--d-ff", "32", "--n-digits", "3", "--n-train", "60", "--n-val",
        "10", "--n-test", "10", "--warmup-steps", "1", "--eval-every", "2", "--quiet"]


def tiny(out, **overrides) -> TrainConfig:
    fields = dict(task="digits", steps=6, batch_size=4, d_model=16, n_layers=1, n_heads=2,
                  d_ff=32, n_digits=3, n_train=60, n_val=10, n_test=10, warmup_steps=2,
                  eval_every=3, checkpoint_every=2, dtype="float64", min_lr=1e-4,
                  out=str(out))
    fields.update(overrides)
    return TrainConfig(**fields)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------ 1. no data loss
def test_train_into_a_run_folder_is_refused_and_changes_nothing(finished, capsys):
    before = snapshot(finished)
    assert main(["train", *TINY, "--out", str(finished)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "already holds a run" in err
    assert "--resume" in err
    assert "--overwrite" in err
    assert snapshot(finished) == before


def test_the_api_refuses_too_and_overwrite_starts_over(tmp_path):
    train(tiny(tmp_path / "r", steps=4), quiet=True)
    before = snapshot(tmp_path / "r")
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(tiny(tmp_path / "r", steps=2))
    assert snapshot(tmp_path / "r") == before
    result = train(tiny(tmp_path / "r", steps=2), quiet=True, overwrite=True)
    assert result.steps == 2
    assert max(r["step"] for r in rows(tmp_path / "r")) == 2
    with pytest.raises(ValueError, match="contradict"):
        Trainer(tiny(tmp_path / "r"), resume=True, overwrite=True)


def test_a_run_killed_before_its_first_checkpoint_says_there_is_nothing_to_resume(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text('{"step": 1, "split": "train"}\n')
    with pytest.raises(FileExistsError, match="no last.npz to resume from; start over with"):
        Trainer(tiny(tmp_path / "r"))


def test_a_nan_stop_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Trainer(tiny(tmp_path / "r", checkpoint_every=2), quiet=True)
    real = trainer.model.loss_and_grads
    calls = []

    def diverge_at_step_5(*args, **kwargs):
        loss, grads = real(*args, **kwargs)
        calls.append(1)
        return (float("nan") if len(calls) == 5 else loss), grads

    trainer.model.loss_and_grads = diverge_at_step_5
    with pytest.raises(NonFiniteError, match=r"step 5: .*last good checkpoint, .*last\.npz "
                                             r"\(step 4\), is kept"):
        trainer.train()
    ckpt = read_checkpoint(tmp_path / "r" / "last.npz")
    assert ckpt.metadata["step"] == 4
    assert all(np.isfinite(v).all() for v in ckpt.params.values())
    assert read_checkpoint(tmp_path / "r" / "best.npz").metadata["step"] == 3
    # and the run resumes from it
    assert Trainer(tiny(tmp_path / "r"), resume=True, quiet=True).step == 4


# ------------------------------------------------------------------------------ 2. output paths
def test_out_that_is_a_file_or_under_one(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(NotADirectoryError, match=r"f is a file, not a folder"):
            Trainer(tiny(out))
        assert main(["train", *TINY, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err
        assert "Traceback" not in err
    for argv in (["inspect", "x.npz", "--prompt", "a", "--out", str(tmp_path / "f")],
                 ["bench", "--quick", "--out", str(tmp_path / "f" / "b")],
                 ["train", *TINY, "--save-config", str(tmp_path / "f" / "c.yaml")],
                 ["train", *TINY, "--save-config", str(tmp_path)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert str(tmp_path) in err
        assert "Traceback" not in err
        assert err.count("\n") == 1


def test_a_missing_parent_is_created(tmp_path):
    result = train(tiny(tmp_path / "a" / "b" / "c", steps=1), quiet=True)
    assert result.finished
    assert (tmp_path / "a" / "b" / "c" / "last.npz").is_file()


def test_read_only_and_full_disk_name_the_path_and_keep_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    atomic_write(path, lambda f: f.write(b"old"))

    def full(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"cannot write .*c\.npz: no space left on the device"):
        atomic_write(path, full)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    with pytest.raises(OSError, match=r"cannot write .*c\.npz: the folder .* is read-only"):
        atomic_write(path, lambda f: f.write(b"new"))
    monkeypatch.setattr("tempfile.TemporaryFile", read_only)
    with pytest.raises(OSError, match=r"out=.* is not allowed: the folder cannot be created or "
                                      r"written \(Read-only file system\)"):
        Trainer(tiny(tmp_path / "ro"))


def test_full_disk_during_training_exits_2_and_keeps_the_checkpoint(tmp_path, monkeypatch,
                                                                    capsys):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 0
    before = snapshot(out)
    real = np.savez

    def full(file, **arrays):
        real(file, **arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    assert main(["train", "--resume", "--steps", "4", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no space left on the device" in err
    assert "Traceback" not in err
    assert snapshot(out)["last.npz"] == before["last.npz"]
    assert not list(out.glob(".*.tmp"))


def test_save_checkpoint_to_a_folder_names_it(tmp_path):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
    with pytest.raises(IsADirectoryError, match=f"cannot write {tmp_path}: it is a folder"):
        save_checkpoint(tmp_path, cfg, ltx.init_params(cfg))


def test_temporary_files_of_a_killed_write_are_removed_on_the_next(tmp_path):
    for name in (".last.npz.k1ll3d_1.tmp", ".last.npz.abc.tmp"):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / ".best.npz.abc.tmp").write_bytes(b"another file's")
    atomic_write(tmp_path / "last.npz", lambda f: f.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.npz.abc.tmp", "last.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umask_mode_not_mkstemp_private_one(tmp_path, umask):
    """Checkpoints, tokenizers and other atomically written files are readable as a plainly
    written file would be (mkstemp's temporary file alone is 0o600)."""
    from literate_tx.tokenizers import CharTokenizer

    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "a.txt", lambda f: f.write(b"x"))
        cfg = ltx.ModelConfig(5, 4, 1, 1, 8, 4)
        save_checkpoint(tmp_path / "c.npz", cfg, ltx.create_model(cfg).parameters())
        CharTokenizer.train("abc").save(tmp_path / "t.json")
    finally:
        os.umask(old)
    for name in ("a.txt", "c.npz", "t.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


# ------------------------------------------------------------------------------ 3. resume
def test_a_longer_resume_keeps_the_schedule_and_adds_a_tail_at_min_lr(tmp_path):
    whole = train(tiny(tmp_path / "whole", steps=6), quiet=True)
    assert whole.finished
    Trainer(tiny(tmp_path / "split", steps=6), quiet=True).train(stop_after=3)
    longer = Trainer(tiny(tmp_path / "split", steps=9), quiet=True, resume=True)
    assert longer.schedule_steps == 6
    longer.train()
    lr = {r["step"]: r["lr"] for r in rows(tmp_path / "split") if r["split"] == "train"}
    lr_whole = {r["step"]: r["lr"] for r in rows(tmp_path / "whole") if r["split"] == "train"}
    assert [lr[s] for s in range(1, 7)] == [lr_whole[s] for s in range(1, 7)]
    assert [lr[s] for s in (7, 8, 9)] == [1e-4] * 3
    # no jump: the rate never rises after the warmup
    after_peak = [lr[s] for s in range(3, 10)]
    assert after_peak == sorted(after_peak, reverse=True)
    # extended again: the horizon is still the first run's
    again = Trainer(tiny(tmp_path / "split", steps=10), quiet=True, resume=True)
    assert again.schedule_steps == 6


def test_resume_to_the_same_steps_is_bit_identical_and_writes_each_row_once(tmp_path):
    whole = Trainer(tiny(tmp_path / "whole"), quiet=True)
    whole.train()
    Trainer(tiny(tmp_path / "split"), quiet=True).train(stop_after=3)
    second = Trainer(tiny(tmp_path / "split"), quiet=True, resume=True)
    second.train()
    a, b = whole.engine.parameters(), second.engine.parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    keys = [(r["step"], r["split"]) for r in rows(tmp_path / "split")]
    assert len(keys) == len(set(keys))
    assert keys == [(r["step"], r["split"]) for r in rows(tmp_path / "whole")]


def test_resume_refuses_fewer_steps_and_a_finished_run(finished, capsys):
    before = snapshot(finished)
    assert main(["train", "--resume", "--out", str(finished), "--steps", "2"]) == 2
    assert "steps=2 is not allowed" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(finished)]) == 2
    assert "already finished (4 steps" in capsys.readouterr().err
    assert snapshot(finished) == before


def test_killed_after_the_last_checkpoint_resume_writes_the_summary_once(tmp_path):
    train(tiny(tmp_path / "r"), quiet=True)
    (tmp_path / "r" / "summary.json").unlink()  # as if killed before writing it
    before = rows(tmp_path / "r")
    result = Trainer(tiny(tmp_path / "r"), resume=True, quiet=True).train()
    assert result.finished
    assert (tmp_path / "r" / "summary.json").is_file()
    assert rows(tmp_path / "r") == before


# ------------------------------------------------------------------------------ 4. wasted runs
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "text", "--seq-len", "1"], "argument --seq-len: seq_len=1 is not allowed"),
        (["--task", "text", "--val-fraction", "0"],
         "argument --val-fraction: val_fraction=0.0 is not allowed for task='text'"),
        (["--warmup-steps", "50", "--steps", "10"],
         "argument --warmup-steps: warmup_steps=50 is not allowed with steps=10"),
        (["--device", "cuda"], "argument --device: device='cuda' is not allowed with "
                               "backend='numpy'"),
        (["--text-file", "/etc/hostname"], "argument --text-file: text_file='/etc/hostname' "
                                           "is not allowed with task='digits'"),
        (["--seed", "-1"], "argument --seed: seed=-1 is not allowed"),
        (["--task", "text", "--dataset", "shakespeare", "--text-file", "a.txt"],
         "argument --text-file: text_file='a.txt' is not allowed with dataset='shakespeare'"),
        (["--task", "text", "--sample-prompt", ""],
         "argument --sample-prompt: sample_prompt='' is not allowed for task='text'"),
    ],
)
def test_inputs_that_would_waste_a_run_are_refused_up_front(tmp_path, argv, message, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_yaml_duplicate_keys_refused_and_3e_4_is_a_number(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 4\nlr: 0.1\nsteps: 5\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "line 3: key 'steps' is given twice (first on line 1)" in capsys.readouterr().err
    path.write_text("lr: 3e-4\nmin_lr: 1E-5\n")
    assert main(["train", "--config", str(path), "--save-config", str(tmp_path / "o.yaml")]) == 0
    cfg = TrainConfig.load_yaml(tmp_path / "o.yaml")
    assert (cfg.lr, cfg.min_lr) == (3e-4, 1e-5)
    assert TrainConfig.from_yaml("lr: 3e-4\n").lr == 3e-4


# ------------------------------------------------------------------------------ 5. checkpoints
def test_a_pickled_object_is_refused_not_called_damage(tmp_path, finished, capsys):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"meta.json": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match=r"refused: contains a pickled object \(not loaded\)"):
        read_checkpoint(path)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert "refused: contains a pickled object (not loaded)" in err
    assert "corrupt" not in err


def _rewrite(src: Path, dst: Path, change) -> Path:
    ckpt = read_checkpoint(src)
    meta = dict(ckpt.metadata)
    change(meta)
    dst.mkdir(exist_ok=True)
    save_checkpoint(dst / "last.npz", ckpt.config, ckpt.params, state=ckpt.state, metadata=meta)
    return dst


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.pop("rng"), "'rng' is missing"),
        (lambda m: m.update(rng={"data": 1, "dropout": 2}), "'rng'="),
        (lambda m: m.update(step="4"), "'step'='4' is not an int >= 0"),
        (lambda m: m.update(best=[1]), "'best'=[1]"),
        (lambda m: m.update(train_config=[]), "'train_config'=[]"),
        (lambda m: m.update(schedule_steps=0), "'schedule_steps'=0 is not an int >= 1"),
    ],
)
def test_damaged_training_metadata_names_the_file_and_field(tmp_path, finished, change, field,
                                                            capsys):
    out = _rewrite(finished / "last.npz", tmp_path / "d", change)
    with pytest.raises(ValueError, match="damaged training state: metadata field " +
                       field.replace("[", r"\[").replace("]", r"\]")):
        Trainer(tiny(out, steps=8), resume=True)
    code = main(["train", "--resume", "--out", str(out), "--steps", "8"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(out / "last.npz") in err
    assert "Traceback" not in err


def test_a_tokenizer_that_does_not_fit_the_model_names_the_file(tmp_path, finished, capsys):
    import dataclasses

    ckpt = read_checkpoint(finished / "last.npz")
    bigger = dataclasses.replace(ckpt.config, vocab_size=ckpt.config.vocab_size + 1)
    out = tmp_path / "v"
    save_checkpoint(out / "last.npz", bigger, ltx.init_params(bigger), metadata=ckpt.metadata)
    assert main(["eval", str(out / "last.npz")]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'last.npz'}: the tokenizer in its metadata has 20 tokens but the model's " \
        "vocab_size is 21" in err
    out = _rewrite(finished / "last.npz", tmp_path / "j", lambda m: m.update(tokenizer="{"))
    assert main(["generate", str(out / "last.npz")]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'last.npz'}: damaged metadata: field 'tokenizer'" in err


# ------------------------------------------------------------------------------ 6. interactive
def test_interactive_settings_are_checked_before_they_apply(finished, capsys, monkeypatch):
    lines = "topk 2\ntopk -1\ntemp -3\ntemp inf\ntopp 0\ntopk\nMax ( 1 2 3 ) =\nquit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["generate", str(finished / "last.npz"), "--interactive",
                 "--temperature", "0"]) == 0
    captured = capsys.readouterr()
    assert "topk: '-1' is not allowed (give an int >= 1, or 0 for off); top_k stays 2" \
        in captured.err
    assert "temp: '-3' is not allowed" in captured.err
    assert "temperature stays 0.0" in captured.err
    assert "temp: 'inf' is not allowed" in captured.err
    assert "topp: '0' is not allowed" in captured.err
    assert "top_p stays None" in captured.err
    assert "topk: '' is not allowed (give one value" in captured.err
    assert captured.out.startswith("Max ( 1 2 3 ) = ")
    assert len(captured.out.splitlines()) == 1
    assert ">" not in captured.out


def test_end_of_input_quits_the_interactive_loop(finished, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["generate", str(finished / "last.npz"), "--interactive"]) == 0
    assert capsys.readouterr().out == ""


def test_a_bug_prints_one_line_not_a_traceback(monkeypatch, capsys):
    import literate_tx.cli as cli

    def broken(args):
        raise TypeError("an internal bug")

    monkeypatch.setattr(cli, "_cmd_info", broken)
    monkeypatch.delenv("LITERATE_TX_TRACEBACK", raising=False)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("literate-tx info: internal error: TypeError: an internal bug")
    assert err.count("\n") == 1
    monkeypatch.setenv("LITERATE_TX_TRACEBACK", "1")
    with pytest.raises(TypeError):
        main(["info"])
    os.environ.pop("LITERATE_TX_TRACEBACK", None)
