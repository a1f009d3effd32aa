"""``literate_tx.hf`` without ``transformers``: round trips, the mapping table, the safetensors
format, and every refusal by name. (The comparison with ``transformers`` itself is in
tests/test_hf_transformers.py.)"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import literate_tx as ltx
from literate_tx import hf
from literate_tx.config import RopeScaling
from literate_tx.hf import (
    config_from_hf,
    config_to_hf,
    load_hf,
    mapping_table,
    read_safetensors,
    save_hf,
    to_hf_state,
    write_safetensors,
)


def _gpt2(**kw):
    base = dict(vocab_size=30, d_model=8, n_layers=2, n_heads=2, max_seq_len=8)
    return ltx.gpt2_config(**{**base, **kw})


def _llama(**kw):
    base = dict(vocab_size=30, d_model=8, n_layers=2, n_heads=2, max_seq_len=8)
    return ltx.llama_config(**{**base, **kw})


@pytest.fixture(params=[False, True], ids=["safetensors-package", "built-in-format"])
def st_impl(request, monkeypatch):
    """Run a test with the ``safetensors`` package, and again with the built-in reader/writer."""
    if request.param:
        monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # import now fails
    else:
        pytest.importorskip("safetensors")
    return request.param


# ============================================================================ mapping table
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_documented_table_is_the_one_the_code_applies(family):
    assert mapping_table(family) in hf.__doc__


# ============================================================================ round trips
CONFIGS = st.one_of(
    st.builds(_gpt2, tie_embeddings=st.booleans(), n_heads=st.sampled_from([1, 2, 4]),
              activation=st.sampled_from(["gelu_tanh", "gelu", "relu", "swish"]),
              norm_eps=st.sampled_from([1e-5, 1e-6]), dropout=st.sampled_from([0.0, 0.1])),
    st.builds(_llama, tie_embeddings=st.booleans(), bias=st.booleans(),
              n_heads=st.sampled_from([2, 4]), n_kv_heads=st.sampled_from([None, 1, 2]),
              rope_theta=st.sampled_from([10000.0, 500000.0]), d_ff=st.sampled_from([12, 24]),
              rope_scaling=st.sampled_from([None, RopeScaling(8.0, 1.0, 4.0, 8192)])),
)


@settings(max_examples=30, deadline=None)
@given(cfg=CONFIGS, dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 9))
def test_save_then_load_gives_back_config_and_weights(tmp_path_factory, cfg, dtype, seed):
    folder = tmp_path_factory.mktemp("hf")
    params = ltx.init_params(cfg, seed=seed, dtype=dtype)
    save_hf((cfg, params), folder)
    cfg2, params2 = load_hf(folder)
    assert cfg2 == cfg
    assert list(params2) == list(params)
    for name, value in params.items():
        assert params2[name].dtype == value.dtype
        np.testing.assert_array_equal(params2[name], value, err_msg=name)


def test_save_hf_takes_a_model_of_any_backend(tmp_path):
    cfg = _llama(n_kv_heads=1)
    ref = ltx.create_model(cfg, backend="numpy", seed=3, dtype="float64")
    model = ltx.create_model(cfg, backend="python", params=ref.parameters(), dtype="float64")
    save_hf(model, tmp_path)
    _, params = load_hf(tmp_path / "config.json")
    np.testing.assert_array_equal(ltx.create_model(cfg, params=params, dtype="float64")
                                  .forward([[1, 2, 3]]), ref.forward([[1, 2, 3]]))
    with pytest.raises(TypeError, match="model of any backend"):
        save_hf("model", tmp_path)


def test_the_hf_layout(tmp_path):
    """Transposes and the c_attn split, checked on known entries."""
    cfg = _gpt2(tie_embeddings=False)
    p = ltx.init_params(cfg, seed=0)
    h = to_hf_state(cfg, p)
    np.testing.assert_array_equal(h["transformer.h.1.attn.c_attn.weight"][:, 8:16],
                                  p["blocks.1.attn.w_k"])
    np.testing.assert_array_equal(h["transformer.h.0.attn.c_attn.bias"][16:],
                                  p["blocks.0.attn.b_v"])
    np.testing.assert_array_equal(h["lm_head.weight"], p["lm_head.w"].T)
    cfg = _llama(n_heads=4, n_kv_heads=2)
    p = ltx.init_params(cfg, seed=0)
    h = to_hf_state(cfg, p)
    assert h["model.layers.0.self_attn.k_proj.weight"].shape == (4, 8)  # (G D, C)
    np.testing.assert_array_equal(h["model.layers.1.mlp.down_proj.weight"],
                                  p["blocks.1.mlp.w_down"].T)


def test_legacy_gpt2_names_and_buffers_load(tmp_path):
    """Old GPT-2 files lack the ``transformer.`` prefix and carry the causal mask ``attn.bias``."""
    cfg = _gpt2()
    params = ltx.init_params(cfg, seed=1)
    tensors = {k.removeprefix("transformer."): v for k, v in to_hf_state(cfg, params).items()}
    for i in range(cfg.n_layers):
        tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 8, 8), np.float32))
    tensors["lm_head.weight"] = params["embed.tokens"]  # tied: written twice by some tools
    write_safetensors(tmp_path / "model.safetensors", tensors)
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(cfg)))
    _, loaded = load_hf(tmp_path)
    assert all(np.array_equal(loaded[k], v) for k, v in params.items())


def test_sharded_folder_with_index(tmp_path, st_impl):
    cfg = _llama()
    params = ltx.init_params(cfg, seed=2)
    tensors = to_hf_state(cfg, params)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:5],
              "model-00002-of-00002.safetensors": names[5:]}
    for shard, keys in shards.items():
        write_safetensors(tmp_path / shard, {k: tensors[k] for k in keys})
    weight_map = {k: s for s, keys in shards.items() for k in keys}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(cfg)))
    cfg2, loaded = load_hf(tmp_path, dtype="float64")
    assert cfg2 == cfg
    assert all(np.array_equal(loaded[k], v) and loaded[k].dtype == np.float64
               for k, v in params.items())


# ============================================================================ sharded writing
@pytest.mark.parametrize(("size", "expected"), [
    (1, 1), (12345, 12345), (np.int64(7), 7), ("10KB", 10_000), ("500MB", 500_000_000),
    ("5GB", 5_000_000_000), ("3KiB", 3072), ("2MiB", 2 * 2**20), ("2GiB", 2 * 2**30),
    (" 5 GB ", 5_000_000_000),
])
def test_shard_sizes_read_as_transformers_reads_them(size, expected):
    assert hf._shard_limit(size) == expected


@pytest.mark.parametrize(("size", "match"), [
    ("5gb", r"max_shard_size='5gb' is not understood; allowed: .*'500MB'.*KiB, MiB, GiB"),
    ("5TB", r"max_shard_size='5TB' is not understood"),
    ("1.5GB", r"max_shard_size='1.5GB' is not understood"),
    ("1000", r"max_shard_size='1000' is not understood"),
    ("GB", r"max_shard_size='GB' is not understood"),
    ("", r"max_shard_size='' is not understood"),
    (0, r"max_shard_size=0 is not positive; allowed: a positive number of bytes"),
    (-5, r"max_shard_size=-5 is not positive"),
    ("0KB", r"max_shard_size='0KB' is not positive"),
    (1.5e9, r"max_shard_size=1500000000.0 is a float; allowed: None \(one file\) or a positive"),
    (True, r"max_shard_size=True is a bool"),
])
def test_bad_shard_sizes_are_named(tmp_path, size, match):
    with pytest.raises(ValueError, match=match):
        save_hf((_gpt2(), ltx.init_params(_gpt2(), seed=0)), tmp_path, max_shard_size=size)
    assert not any(tmp_path.iterdir())  # refused before writing anything


def _shards(folder):
    return sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))


def _index(folder):
    return json.loads((folder / "model.safetensors.index.json").read_text())


def test_shards_are_filled_in_name_order(tmp_path, st_impl):
    cfg = _llama(tie_embeddings=False)  # float32: embedding and head 960 bytes each, 8736 in all
    params = ltx.init_params(cfg, seed=4)
    tensors = to_hf_state(cfg, params)
    sizes = {k: v.nbytes for k, v in sorted(tensors.items())}
    total = sum(sizes.values())
    limit = 900
    save_hf((cfg, params), tmp_path, max_shard_size=limit)
    index = _index(tmp_path)
    assert index["metadata"] == {"total_size": total}
    assert set(index["weight_map"]) == set(tensors)
    n = len(_shards(tmp_path))
    assert _shards(tmp_path) == [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]
    assert not (tmp_path / "model.safetensors").exists()
    # Each shard holds a run of names in order, at most `limit` bytes unless one tensor alone,
    # and the next tensor would not have fitted into it.
    runs = [sorted(read_safetensors(tmp_path / s)) for s in _shards(tmp_path)]
    assert [k for run in runs for k in run] == list(sizes)
    assert index["weight_map"] == {k: s for s, run in zip(_shards(tmp_path), runs, strict=True)
                                   for k in run}
    for i, run in enumerate(runs):
        size = sum(sizes[k] for k in run)
        assert size <= limit or len(run) == 1
        if i + 1 < len(runs):
            assert size + sizes[runs[i + 1][0]] > limit
    big = [k for k, b in sizes.items() if b > limit]
    assert big == ["lm_head.weight", "model.embed_tokens.weight"]
    assert all([k] in runs for k in big)  # each alone
    # A limit twice as large gives fewer shards; one of exactly the total gives a single file.
    again = tmp_path / "again"
    save_hf((cfg, params), again, max_shard_size=2 * limit)
    assert 1 < len(_shards(again)) < n
    save_hf((cfg, params), tmp_path / "one", max_shard_size=total)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["config.json",
                                                                    "model.safetensors"]
    save_hf((cfg, params), tmp_path / "two", max_shard_size=total - 1)
    assert len(_shards(tmp_path / "two")) == 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", [_gpt2(tie_embeddings=True), _llama(n_heads=4, n_kv_heads=2)],
                         ids=["gpt2", "llama"])
def test_sharded_save_loads_back_bit_for_bit(tmp_path, st_impl, cfg, dtype):
    params = ltx.init_params(cfg, seed=6, dtype=dtype)
    save_hf((cfg, params), tmp_path, max_shard_size="1KB")
    assert len(_shards(tmp_path)) > 2
    cfg2, loaded = load_hf(tmp_path)
    assert cfg2 == cfg
    assert list(loaded) == list(params)
    for name, value in params.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_rewriting_a_folder_leaves_no_stale_weights(tmp_path):
    cfg = _gpt2()
    first, second, third = (ltx.init_params(cfg, seed=s) for s in (1, 2, 3))
    unrelated = {"README.md": "a card", "tokenizer.json": "{}", "pytorch_model.bin": "pickle",
                 "model-extra.safetensors": "x", "notes-00001-of-00002.safetensors": "y"}
    for name, text in unrelated.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sub").mkdir()

    def weights():
        return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("model")
                      and p.name not in unrelated)

    def loads(params):
        _, loaded = load_hf(tmp_path)
        return all(np.array_equal(loaded[k], v) for k, v in params.items())

    save_hf((cfg, first), tmp_path)
    assert weights() == ["model.safetensors"]
    assert loads(first)
    save_hf((cfg, second), tmp_path, max_shard_size="1KB")  # single -> sharded
    many = _shards(tmp_path)
    assert len(many) > 2
    assert weights() == [*many, "model.safetensors.index.json"]
    assert loads(second)
    save_hf((cfg, third), tmp_path, max_shard_size="3KB")  # sharded -> fewer shards
    fewer = _shards(tmp_path)
    assert 1 < len(fewer) < len(many)
    assert weights() == [*fewer, "model.safetensors.index.json"]
    assert set(_index(tmp_path)["weight_map"].values()) == set(fewer)
    assert loads(third)
    save_hf((cfg, first), tmp_path)  # sharded -> single
    assert weights() == ["model.safetensors"]
    assert loads(first)
    assert {n: (tmp_path / n).read_text() for n in unrelated} == unrelated
    assert (tmp_path / "sub").is_dir()


# ============================================================================ safetensors
def test_builtin_format_equals_the_package(tmp_path, monkeypatch):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    tensors = {"a.w": rng.normal(size=(3, 4)), "b": rng.normal(size=5).astype(np.float32),
               "c": rng.normal(size=(2, 1, 2)).astype(np.float16), "d": np.zeros((0, 3))}
    safetensors_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"))
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "safetensors.numpy", None)  # the built-in path
        ours = read_safetensors(tmp_path / "theirs.safetensors")
        write_safetensors(tmp_path / "ours.safetensors",
                          {k: v for k, v in tensors.items() if v.dtype != np.float16})
    assert set(ours) == set(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(ours[k], v.astype(np.float32) if v.dtype == np.float16
                                      else v)
    theirs = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    assert {k: (v.dtype, v.shape) for k, v in theirs.items()} == {
        k: (v.dtype, v.shape) for k, v in tensors.items() if v.dtype != np.float16}
    assert all(np.array_equal(theirs[k], tensors[k]) for k in theirs)


def _raw_safetensors(path, entries, data: bytes) -> None:
    header = json.dumps(entries).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_bfloat16_widens_exactly(tmp_path, st_impl):
    values = np.array([1.0, -2.5, 3.140625, 1e-3], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")  # the top half of each float32
    _raw_safetensors(tmp_path / "x.safetensors",
                     {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}},
                     bf16.tobytes())
    out = read_safetensors(tmp_path / "x.safetensors")["w"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.ravel(), (bf16.astype(np.uint32) << 16).view(np.float32))
    assert out[0, 0] == 1.0


@pytest.mark.parametrize(("entries", "data", "match"), [
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "byte range"),
    ({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "dtype"),
    ({"w": {"shape": [1]}}, b"", "malformed"),
])
def test_bad_safetensors_are_named(tmp_path, entries, data, match, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    _raw_safetensors(tmp_path / "bad.safetensors", entries, data)
    with pytest.raises(ValueError, match=match):
        read_safetensors(tmp_path / "bad.safetensors")
    (tmp_path / "short.safetensors").write_bytes(b"\x40\0\0\0\0\0\0\0{}")
    with pytest.raises(ValueError, match="truncated"):
        read_safetensors(tmp_path / "short.safetensors")


# ============================================================================ refusals
GPT2_JSON = config_to_hf(_gpt2())
LLAMA_JSON = config_to_hf(_llama())


@pytest.mark.parametrize(("base", "change", "match"), [
    (LLAMA_JSON, {"model_type": "mistral"}, "model_type='mistral' is not supported"),
    (GPT2_JSON, {"architectures": ["GPT2Model"]}, "architectures=.*GPT2LMHeadModel"),
    (LLAMA_JSON, {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}},
     "rope_parameters.rope_type='linear'"),
    (LLAMA_JSON, {"rope_scaling": {"type": "dynamic", "factor": 2.0}},
     "rope_scaling.rope_type='dynamic'"),
    (LLAMA_JSON, {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
     "'llama3' scaling needs low_freq_factor, high_freq_factor, original_max_position_emb"),
    (LLAMA_JSON, {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                                   "high_freq_factor": 1.0,
                                   "original_max_position_embeddings": 8192}},
     "rope_scaling: rope_scaling.low_freq_factor=4.0 must be < high_freq_factor=1.0"),
    (LLAMA_JSON, {"sliding_window": 4096}, "sliding_window=4096"),
    (LLAMA_JSON, {"head_dim": 8}, "head_dim=8"),
    (LLAMA_JSON, {"attention_bias": True, "mlp_bias": False}, "attention_bias, mlp_bias"),
    (LLAMA_JSON, {"hidden_act": "gelu"}, "hidden_act='gelu'"),
    (LLAMA_JSON, {"attention_dropout": 0.1}, "attention_dropout=0.1"),
    (GPT2_JSON, {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    (GPT2_JSON, {"scale_attn_weights": False}, "scale_attn_weights=False"),
    (GPT2_JSON, {"add_cross_attention": True}, "add_cross_attention"),
    (GPT2_JSON, {"activation_function": "gelu_fast"}, "activation_function='gelu_fast'"),
    (GPT2_JSON, {"attn_pdrop": 0.0, "resid_pdrop": 0.1}, "one dropout probability"),
    (GPT2_JSON, {"n_embd": 9}, "d_model=9 is not divisible by n_heads=2"),
])
def test_unsupported_options_are_refused_by_name(base, change, match):
    with pytest.raises(ValueError, match=match):
        config_from_hf({**base, **change})


def test_missing_field_is_named():
    data = dict(LLAMA_JSON)
    del data["hidden_size"]
    with pytest.raises(ValueError, match="'hidden_size' is missing"):
        config_from_hf(data)


def test_configs_of_neither_family_are_refused(tmp_path):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8, residual="post")
    with pytest.raises(ValueError, match="GPT-2 needs residual='pre'"):
        save_hf(ltx.create_model(cfg), tmp_path)
    with pytest.raises(ValueError, match="GPT-2 needs bias=True"):
        save_hf(ltx.create_model(_gpt2(bias=False)), tmp_path)


def _folder(tmp_path, cfg, tensors):
    write_safetensors(tmp_path / "model.safetensors", tensors)
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(cfg)))
    return tmp_path


def test_bad_folders_are_named(tmp_path):
    cfg = _llama()
    tensors = to_hf_state(cfg, ltx.init_params(cfg, seed=0))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_hf(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(cfg)))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ValueError, match="pickles and are never loaded"):
        load_hf(tmp_path)
    extra = {**tensors, "model.layers.0.self_attn.q_norm.weight": np.ones(4, np.float32)}
    with pytest.raises(ValueError, match="no place for: 'model.layers.0.self_attn.q_norm"):
        load_hf(_folder(tmp_path, cfg, extra))
    fewer = {k: v for k, v in tensors.items() if k != "lm_head.weight"}
    with pytest.raises(ValueError, match="no tensor 'lm_head.weight'"):
        load_hf(_folder(tmp_path, cfg, fewer))
    wrong = {**tensors, "model.embed_tokens.weight": np.zeros((31, 8), np.float32)}
    with pytest.raises(ValueError, match=r"'model.embed_tokens.weight' has shape \(31, 8\)"):
        load_hf(_folder(tmp_path, cfg, wrong))
    _folder(tmp_path, cfg, tensors)
    with pytest.raises(ValueError, match="dtype='float16'"):
        load_hf(tmp_path, dtype="float16")


# ============================================================================ the command line
@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A small GPT-2 folder of our own: random weights, a BPE trained on a little text."""
    from literate_tx.tokenizers import BPETokenizer, GPT2Tokenizer

    folder = tmp_path_factory.mktemp("gpt2")
    bpe = BPETokenizer.train("Alice was beginning to get very tired of sitting by her sister "
                             "on the bank, and of having nothing to do.", vocab_size=300,
                             special_tokens=["<|endoftext|>"])
    tok = GPT2Tokenizer.from_bpe(bpe)
    tok.save_files(folder)
    cfg = _gpt2(vocab_size=tok.vocab_size, max_seq_len=32, init_std=0.5)
    save_hf(ltx.create_model(cfg, seed=4, dtype="float64"), folder)
    return folder, tok


def test_generate_hf_runs_in_every_backend(gpt2_folder, capsys):
    from literate_tx.cli import main

    folder, tok = gpt2_folder
    cfg, params = load_hf(folder)
    model = ltx.create_model(cfg, params=params, dtype="float64")
    prompt = "Alice was"
    expected = prompt + tok.decode(ltx.generate(model, tok.encode(prompt), 6, temperature=0))
    for backend in ltx.available_backends():
        assert main(["generate", "--hf", str(folder), "--prompt", prompt, "--temperature", "0",
                     "--max-new-tokens", "6", "--backend", backend]) == 0
        assert capsys.readouterr().out == expected + "\n", backend


@pytest.mark.parametrize(("argv", "match"), [
    (["generate", "--prompt", "x"], "either a CHECKPOINT or --hf DIR"),
    (["generate", "x.npz", "--hf", "DIR", "--prompt", "x"], "either a CHECKPOINT or --hf DIR"),
    (["generate", "--hf", "{folder}"], "--hf needs --prompt"),
    (["generate", "--hf", "{empty}", "--prompt", "x"], "no config.json"),
    (["generate", "--hf", "{no_tokenizer}", "--prompt", "x"], "neither vocab.json with merges.txt"),
    (["generate", "--hf", "{damaged}", "--prompt", "x"], "tokenizer.json: not a JSON file"),
    (["generate", "--hf", "{wordpiece}", "--prompt", "x"], 'model.type is "WordPiece"'),
    (["generate", "--hf", "{sentencepiece}", "--prompt", "x"], "only tokenizer.model"),
])
def test_generate_hf_errors_are_one_line(gpt2_folder, tmp_path, capsys, argv, match):
    from literate_tx.cli import main

    folder, _ = gpt2_folder
    (tmp_path / "empty").mkdir()
    save_hf((_gpt2(), ltx.init_params(_gpt2())), tmp_path / "no_tokenizer")
    for name, file, text in (("damaged", "tokenizer.json", "{"),
                             ("wordpiece", "tokenizer.json",
                              '{"model": {"type": "WordPiece", "vocab": {}}}'),
                             ("sentencepiece", "tokenizer.model", "\x00")):
        save_hf((_gpt2(), ltx.init_params(_gpt2())), tmp_path / name)
        (tmp_path / name / file).write_text(text, encoding="utf-8")
    argv = [a.format(folder=folder, empty=tmp_path / "empty",
                     no_tokenizer=tmp_path / "no_tokenizer", damaged=tmp_path / "damaged",
                     wordpiece=tmp_path / "wordpiece", sentencepiece=tmp_path / "sentencepiece")
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err
