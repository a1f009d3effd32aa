"""Training on two processes (issue 18, item 4): DDP with the gloo backend on the CPU.

The processes are started as ``torchrun`` starts them (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` in the environment; ``python -m literate_tx train ...``), but they meet through a
file store (``LITERATE_TX_DIST_INIT=file://...``) instead of torchrun's TCP store, which
listens on every interface; gloo itself is held to the loopback (``GLOO_SOCKET_IFNAME=lo``).
Every launch has a timeout and kills what is left.

A two-process run with SGD in float64 must end on the parameters of one process training on
the union batch, after a resume in a new launch; process 1 must write nothing in the run's
folder (an audit hook, installed through ``sitecustomize``, records every file it opens for
writing, creates, renames or deletes there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("needs torch.distributed with gloo", allow_module_level=True)

from literate_tx.api import create_model  # noqa: E402
from literate_tx.checkpoint import read_checkpoint  # noqa: E402
from literate_tx.training import TrainConfig, Trainer  # noqa: E402
from literate_tx.training.distributed import DistInfo, detect, resolve_device  # noqa: E402

WORLD = 2
LAUNCH_TIMEOUT = 120  # seconds per launch; a hung process group is killed

# SGD in float64 at a constant rate (min_lr = lr: the resume's extra steps run at the same
# rate); 8 rows per update shared by 2 processes x 2 micro-batches
RUN = ["--backend", "torch", "--device", "cpu", "--dtype", "float64", "--optimizer", "sgd",
       "--lr", "0.3", "--min-lr", "0.3", "--schedule", "constant", "--warmup-steps", "0",
       "--grad-clip", "0", "--batch-size", "8", "--grad-accum", "2", "--d-model", "16",
       "--n-layers", "1", "--n-heads", "2", "--d-ff", "32", "--n-train", "64", "--n-val", "8",
       "--n-test", "8", "--eval-every", "1", "--checkpoint-every", "1", "--threads", "1",
       "--seed", "3"]

AUDIT = textwrap.dedent('''
    """Test helper: record what this process writes under LTX_AUDIT_DIR (see test_distributed)."""
    import atexit, json, os, sys

    _root = os.environ.get("LTX_AUDIT_DIR")
    if _root:
        _root = os.path.realpath(_root)
        _events = []

        def _under(path):
            try:
                path = os.fsdecode(path)
            except TypeError:
                return False
            return os.path.realpath(os.path.abspath(path)).startswith(_root)

        def _hook(event, args):
            try:
                if event == "open":
                    path, mode, flags = args
                    writes = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                        flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                    if writes and not isinstance(path, int) and _under(path):
                        _events.append([event, os.fsdecode(path)])
                elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir",
                               "os.truncate", "shutil.rmtree", "os.symlink", "os.link"):
                    if any(_under(a) for a in args[:2] if isinstance(a, (str, bytes))):
                        _events.append([event, str(args[0])])
            except Exception:  # a hook must never break the process it watches
                pass

        def _report():
            out = os.environ["LTX_AUDIT_OUT"] + "." + os.environ.get("RANK", "0")
            with open(out, "w") as f:
                json.dump(_events, f)

        sys.addaudithook(_hook)
        atexit.register(_report)
''')


def _launch(args: list[str], tmp: Path, tag: str) -> list[str]:
    """``python -m literate_tx ARGS`` on WORLD processes; returns rank 0's stdout."""
    store = tmp / f"store-{tag}"
    env = {**os.environ, "WORLD_SIZE": str(WORLD), "LOCAL_WORLD_SIZE": str(WORLD),
           "LITERATE_TX_DIST_INIT": store.as_uri(), "GLOO_SOCKET_IFNAME": "lo",
           "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp / "site"), os.environ.get("PYTHONPATH", "")]),
           "LTX_AUDIT_DIR": str(tmp / "run"), "LTX_AUDIT_OUT": str(tmp / f"audit-{tag}")}
    procs = []
    try:
        for rank in range(WORLD):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "literate_tx", *args],
                env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=LAUNCH_TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"rank {rank} exited {p.returncode}:\n{out}\n{err[-3000:]}"
    return [out for out, _ in outputs]


def _audit(tmp: Path, tag: str, rank: int) -> list:
    return json.loads((tmp / f"audit-{tag}.{rank}").read_text())


def test_two_processes_equal_one_process_on_the_union_batch_and_resume(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(AUDIT)
    run = tmp_path / "run"
    first = _launch(["train", *RUN, "--steps", "2", "--out", str(run)], tmp_path, "a")
    assert "done: 2 steps" in first[0]
    assert first[1] == ""  # process 1 prints nothing
    second = _launch(["train", "--resume", "--out", str(run), "--steps", "4"], tmp_path, "b")
    assert "done: 4 steps" in second[0]
    # process 1 wrote nothing in the run's folder; process 0 wrote the run (the hook works)
    for tag in ("a", "b"):
        assert _audit(tmp_path, tag, 1) == []
        written = {Path(p).name for _, p in _audit(tmp_path, tag, 0)}
        assert "metrics.jsonl" in written
        assert any(name.startswith("last.npz") or ".last.npz" in name or name.endswith(".tmp")
                   for name in written), written

    # one process, the whole batch of 8 rows, no accumulation, no interruption
    cfg = TrainConfig(task="digits", backend="torch", device="cpu", dtype="float64",
                      optimizer="sgd", lr=0.3, min_lr=0.3, schedule="constant", warmup_steps=0,
                      grad_clip=0.0, batch_size=8, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                      n_train=64, n_val=8, n_test=8, eval_every=1, checkpoint_every=1,
                      threads=1, seed=3, steps=4, out=str(tmp_path / "single"))
    single = Trainer(cfg, quiet=True)
    single.train()
    reference = single.engine.parameters()
    ddp = read_checkpoint(run / "last.npz")
    assert ddp.metadata["step"] == 4
    assert set(ddp.params) == set(reference)
    for name, value in reference.items():
        np.testing.assert_allclose(ddp.params[name], value, rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    # and the updates did move them (the comparison is not between two idle runs)
    start = create_model(single.model_config, "torch", seed=3, dtype="float64").parameters()
    assert max(float(np.abs(value - start[name]).max())
               for name, value in reference.items()) > 1e-3
    # the loss logged by process 0 is the all-reduced loss of the whole batch
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    expected = [r["loss"] for r in single.history if r["split"] == "train"]
    assert [r["loss"] for r in train_rows] == pytest.approx(expected, rel=1e-12)


def test_detect_reads_torchrun_variables():
    assert detect({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == DistInfo(1, 2, 1)
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        detect({"WORLD_SIZE": "two"})


def test_mps_is_refused_under_several_processes(monkeypatch):
    import literate_tx.training.distributed as distributed

    monkeypatch.setattr(distributed, "_mps_available", lambda torch: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "torch", DistInfo()) == ("mps", "mps (auto: Apple GPU, no CUDA)")
    with pytest.raises(ValueError, match="device='mps' is not allowed with 2 processes"):
        resolve_device("auto", "torch", DistInfo(rank=0, world_size=2))


def test_a_numbered_gpu_is_refused_under_several_processes():
    with pytest.raises(ValueError, match=r"device='cuda:1' is not allowed with 2 processes"):
        resolve_device("cuda:1", "torch", DistInfo(rank=0, world_size=2))


def test_micro_batches_but_the_last_run_under_no_sync(monkeypatch):
    # the engine's wiring, in one process: a stand-in for DistributedDataParallel records
    # which micro-batches ran under no_sync (gradients kept local) and which one synchronised
    import contextlib

    from literate_tx.training.engines import _TorchEngine

    events = []

    class FakeDDP(torch.nn.Module):
        def __init__(self, module, device_ids=None):
            super().__init__()
            self.module = module
            self.syncing = True

        @contextlib.contextmanager
        def no_sync(self):
            self.syncing = False
            try:
                yield
            finally:
                self.syncing = True

        def forward(self, x):
            events.append(("sync" if self.syncing else "local", tuple(x.shape)))
            return self.module(x)

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", FakeDDP)
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor, *a, **k: None)
    cfg = TrainConfig(backend="torch", device="cpu", dtype="float64", batch_size=12,
                      grad_accum=3, d_model=8, n_layers=1, n_heads=2, d_ff=16, out="unused")
    model = create_model(cfg.model_config(20, 5), "torch", seed=0, dtype="float64")
    engine = _TorchEngine(model, cfg, 0, DistInfo(rank=1, world_size=2, local_rank=1))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 20, size=(12, 5)), rng.integers(0, 20, size=(12, 5))
    engine.step(x, y, 0.1, 1)
    # process 1 of 2 holds rows 6..11, cut into three micro-batches of two rows
    assert events == [("local", (2, 5)), ("local", (2, 5)), ("sync", (2, 5))]
