"""Checkpoints: round trips, atomic writes, and clear errors for corrupt or mismatched files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import configs

import literate_tx as ltx
from literate_tx.checkpoint import atomic_write


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs())
def test_round_trip_any_config(tmp_path, cfg):
    params = ltx.init_params(cfg, seed=1, dtype="float64")
    path = tmp_path / "m.npz"
    ltx.save_checkpoint(path, cfg, params, state={"adam.m": np.ones(3)}, metadata={"step": 3})
    ckpt = ltx.read_checkpoint(path)
    assert ckpt.config == cfg
    assert list(ckpt.params) == list(params)
    for k in params:
        np.testing.assert_array_equal(ckpt.params[k], params[k])
    assert ckpt.metadata == {"step": 3}
    np.testing.assert_array_equal(ckpt.state["adam.m"], np.ones(3))


def make(tmp_path):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    path = tmp_path / "m.npz"
    ltx.save_checkpoint(path, cfg, ltx.init_params(cfg))
    return cfg, path


def test_truncated_file_is_a_clear_error(tmp_path):
    _, path = make(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="m.npz"):
        ltx.load_checkpoint(path)


def test_corrupted_tensor_bytes_name_the_tensor(tmp_path):
    _, path = make(tmp_path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("params/blocks.0.attn.w_q.npy")
    data = bytearray(path.read_bytes())
    # flip bytes in the middle of that member's data (after its local header)
    start = info.header_offset + 30 + len(info.filename) + 200
    data[start : start + 8] = bytes(8)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.w_q"):
        ltx.load_checkpoint(path)


def test_mismatched_shape_names_the_tensor(tmp_path):
    cfg, path = make(tmp_path)
    params = ltx.init_params(cfg)
    params["blocks.0.mlp.w_up"] = np.zeros((8, 15), dtype=np.float32)
    arrays = {f"params/{k}": v for k, v in params.items()}
    meta = {"format": "literate-tx-checkpoint", "version": 1, "config": cfg.to_dict(),
            "metadata": {}}
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"'blocks\.0\.mlp\.w_up' has shape \(8, 15\)"):
        ltx.load_checkpoint(path)


def test_bad_config_field_is_named(tmp_path):
    cfg, path = make(tmp_path)
    meta = {"format": "literate-tx-checkpoint", "version": 1,
            "config": {**cfg.to_dict(), "norm": "batchnorm"}, "metadata": {}}
    arrays = {f"params/{k}": v for k, v in ltx.init_params(cfg).items()}
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="norm='batchnorm'"):
        ltx.load_checkpoint(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"meta.json": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="evil.npz"):
        ltx.load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.ones(2))
    with pytest.raises(ValueError, match="no 'meta.json'"):
        ltx.load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        ltx.load_checkpoint(tmp_path / "missing.npz")


def test_save_refuses_params_that_do_not_match(tmp_path):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    params = ltx.init_params(cfg)
    del params["lm_head.w"]
    with pytest.raises(ValueError, match="lm_head.w"):
        ltx.save_checkpoint(tmp_path / "m.npz", cfg, params)
    assert not list(tmp_path.iterdir())  # nothing written


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_weights_move_between_models(tmp_path):
    cfg = ltx.llama_config(vocab_size=20, d_model=16, n_layers=2, n_heads=2, max_seq_len=8)
    model = ltx.create_model(cfg, seed=5, dtype="float64")
    ltx.save_checkpoint(tmp_path / "m.npz", cfg, model.parameters())
    cfg2, params2 = ltx.load_checkpoint(tmp_path / "m.npz")
    same = ltx.create_model(cfg2, params=params2, dtype="float64")
    np.testing.assert_array_equal(model.forward([[1, 2, 3]]), same.forward([[1, 2, 3]]))
