"""``load_hf`` / ``save_hf`` against Hugging Face ``transformers`` itself, in float64.

Tiny random GPT-2 and Llama models (tied and untied heads, with and without biases, with and
without grouped-query attention) are built by ``transformers``, written with
``save_pretrained``, read with :func:`literate_tx.hf.load_hf` and run in all three backends: the
logits, the loss, every gradient (``transformers``' gradients mapped through the same
renaming) and greedy decoding with the key/value cache must agree to 1e-9. A folder written by
:func:`literate_tx.hf.save_hf`, as one file or sharded, must give the same logits in
``from_pretrained``; a sharded ``save_pretrained`` folder must load as the single file does.

``transformers`` computes Llama's RMSNorm and its rotary angles in float32 even in a float64
model (to keep bfloat16 training stable); the fixture ``float64_llama`` replaces those two
``forward`` methods with the same formulas without the casts, so that the comparison measures
the mapping and not float32 round-off.

Needs the ``hf`` extra (``pip install -e ".[test,hf]"``); skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import literate_tx as ltx  # noqa: E402
from literate_tx.config import RopeScaling  # noqa: E402
from literate_tx.hf import config_to_hf, from_hf_state, load_hf, save_hf  # noqa: E402

BOUND = 1e-9
V, T = 61, 7


@pytest.fixture
def float64_llama(monkeypatch):
    """Llama's RMSNorm and rotary embedding without their float32 casts."""
    from transformers.models.llama import modeling_llama as ml

    def rmsnorm(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))

    def rotary(self, x, position_ids):
        cfg = self.config
        dim = cfg.hidden_size // cfg.num_attention_heads
        theta = cfg.rope_parameters["rope_theta"]
        inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        freqs = position_ids[..., None].to(torch.float64) * inv_freq  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    monkeypatch.setattr(ml.LlamaRMSNorm, "forward", rmsnorm)
    monkeypatch.setattr(ml.LlamaRotaryEmbedding, "forward", rotary)


def _hf_model(family: str, *, tied: bool, bias: bool, kv_heads: int | None, seed: int):
    """A random float64 ``transformers`` model with every weight drawn N(0, 0.2^2)."""
    torch.manual_seed(seed)
    if family == "gpt2":
        conf = transformers.GPT2Config(
            vocab_size=V, n_embd=16, n_layer=2, n_head=2, n_positions=16,
            tie_word_embeddings=tied, bos_token_id=None, eos_token_id=None,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)
        model = transformers.GPT2LMHeadModel(conf)
    else:
        conf = transformers.LlamaConfig(
            vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=kv_heads or 4,
            max_position_embeddings=16, attention_bias=bias, mlp_bias=bias,
            tie_word_embeddings=tied, bos_token_id=None, eos_token_id=None,
            rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 500.0})
        model = transformers.LlamaForCausalLM(conf)
    model = model.to(torch.float64).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_gain = name.endswith("weight") and p.ndim == 1  # norms' gains: near 1
            p.copy_(0.2 * torch.randn_like(p) + (1.0 if is_gain else 0.0))
    return model


CASES = [
    ("gpt2", True, True, None),
    ("gpt2", False, True, None),
    ("llama", False, False, None),
    ("llama", True, True, None),
    ("llama", False, False, 2),
    ("llama", True, False, 1),
]
IDS = [f"{f}-{'tied' if t else 'untied'}-{'bias' if b else 'nobias'}-kv{k or 'H'}"
       for f, t, b, k in CASES]


def _backends(cfg):
    """Every installed backend; with GQA, those that build it (it reached NumPy first)."""
    out = []
    for backend in ltx.available_backends():
        try:
            ltx.create_model(cfg, backend=backend, dtype="float64")
        except (ValueError, NotImplementedError):
            if cfg.n_kv_heads is None:
                raise
            continue
        out.append(backend)
    return out


@pytest.fixture(params=CASES, ids=IDS)
def pair(request, tmp_path, float64_llama):
    """(transformers model, our config, our params, family) for one case."""
    family, tied, bias, kv = request.param
    hf = _hf_model(family, tied=tied, bias=bias, kv_heads=kv, seed=len(tmp_path.name))
    hf.save_pretrained(tmp_path)
    cfg, params = load_hf(tmp_path, dtype="float64")
    return hf, cfg, params, family


def test_config_matches(pair):
    hf, cfg, _, family = pair
    c = hf.config
    assert (cfg.vocab_size, cfg.n_layers, cfg.d_model) == (V, 2, 16)
    assert cfg.tie_embeddings == bool(c.tie_word_embeddings)
    if family == "llama":
        assert (cfg.norm, cfg.activation, cfg.position) == ("rmsnorm", "swiglu", "rope")
        assert (cfg.kv_heads, cfg.d_ff) == (c.num_key_value_heads, c.intermediate_size)
        assert (cfg.norm_eps, cfg.rope_theta) == (c.rms_norm_eps, 500.0)
        assert cfg.bias == c.attention_bias
    else:
        assert (cfg.norm, cfg.activation, cfg.position) == ("layernorm", "gelu_tanh", "learned")
        assert (cfg.d_ff, cfg.norm_eps) == (64, c.layer_norm_epsilon)


def _tokens(seed: int, B: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=(B, T))


def test_logits_loss_and_every_gradient(pair):
    hf, cfg, params, family = pair
    tokens, targets = _tokens(1), _tokens(2)
    hf.zero_grad()
    logits = hf(torch.as_tensor(tokens)).logits  # (B, T, V)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                             torch.as_tensor(targets).reshape(-1))
    loss.backward()
    ref_logits = logits.detach().numpy()
    hf_grads = {n: p.grad.numpy() for n, p in hf.named_parameters()}
    ref_grads = from_hf_state(cfg, family, hf_grads)
    scale = max(1.0, float(np.abs(ref_logits).max()))
    backends = _backends(cfg)
    assert "numpy" in backends
    for backend in backends:
        model = ltx.create_model(cfg, backend=backend, params=params, dtype="float64")
        ours = model.forward(tokens)
        np.testing.assert_allclose(ours, ref_logits, rtol=0, atol=BOUND * scale,
                                   err_msg=f"{backend} logits")
        our_loss, grads = model.loss_and_grads(tokens, targets)
        assert abs(our_loss - loss.item()) < BOUND, backend
        assert grads.keys() == ref_grads.keys()
        for name, g in grads.items():
            np.testing.assert_allclose(g, ref_grads[name], rtol=0, atol=BOUND,
                                       err_msg=f"{backend} d{name}")


@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")
def test_greedy_generation_with_the_cache(pair):
    hf, cfg, params, _ = pair
    prompt = [int(t) for t in _tokens(3, B=1)[0, :4]]
    n = 6
    out = hf.generate(torch.as_tensor([prompt]), max_new_tokens=n, min_new_tokens=n,
                      do_sample=False, use_cache=True, pad_token_id=0)
    ref_tokens = out[0, len(prompt):].tolist()
    # generate() hands out float32 scores; its cache, stepped by hand, gives float64 logits.
    step = hf(torch.as_tensor([prompt]), use_cache=True)
    ref_logits = [step.logits[0, -1]]
    for token in ref_tokens[:-1]:
        step = hf(torch.as_tensor([[token]]), past_key_values=step.past_key_values,
                  use_cache=True)
        ref_logits.append(step.logits[0, -1])
    ref_logits = torch.stack(ref_logits).detach().numpy()  # (n, V)
    for backend in _backends(cfg):
        model = ltx.create_model(cfg, backend=backend, params=params, dtype="float64")
        assert ltx.generate(model, prompt, n, temperature=0) == ref_tokens, backend
        # The cached logits themselves, step by step, fed the reference's tokens.
        logits, kv = model.decode(np.array([prompt]))
        steps = [logits[0, -1]]
        for token in ref_tokens[:-1]:
            logits, kv = model.decode(np.array([[token]]), kv)
            steps.append(logits[0, -1])
        np.testing.assert_allclose(np.stack(steps), ref_logits, rtol=0, atol=BOUND,
                                   err_msg=f"{backend} cached logits")


def test_save_hf_reads_back_in_transformers(pair, tmp_path):
    hf, cfg, params, _ = pair
    tokens = torch.as_tensor(_tokens(4))
    ref = hf(tokens).logits.detach().numpy()
    out = tmp_path / "ours"
    save_hf(ltx.create_model(cfg, backend="numpy", params=params, dtype="float64"), out)
    again = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float64).eval()
    assert type(again) is type(hf)
    np.testing.assert_allclose(again(tokens).logits.detach().numpy(), ref, rtol=0, atol=BOUND)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_model_of_ours_runs_in_transformers(family, tmp_path, float64_llama):
    """Our own initialisation, written by save_hf, gives our logits in transformers."""
    if family == "gpt2":
        cfg = ltx.gpt2_config(vocab_size=V, d_model=16, n_layers=2, n_heads=4, max_seq_len=16,
                              tie_embeddings=False, dropout=0.0, init_std=0.3)
    else:
        cfg = ltx.llama_config(vocab_size=V, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2,
                               max_seq_len=16, tie_embeddings=True, init_std=0.3,
                               rope_theta=321.0)
    model = ltx.create_model(cfg, backend="numpy", seed=5, dtype="float64")
    save_hf(model, tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float64).eval()
    tokens = _tokens(6)
    np.testing.assert_allclose(hf(torch.as_tensor(tokens)).logits.detach().numpy(),
                               model.forward(tokens), rtol=0, atol=BOUND)
    assert load_hf(tmp_path)[0] == cfg


def test_sharded_folder(tmp_path, float64_llama):
    """A model split over several safetensors files, with their index, loads the same."""
    hf = _hf_model("llama", tied=False, bias=False, kv_heads=2, seed=0)
    hf.save_pretrained(tmp_path / "one")
    hf.save_pretrained(tmp_path / "many", max_shard_size="10KB")
    assert (tmp_path / "many" / "model.safetensors.index.json").is_file()
    a, b = load_hf(tmp_path / "one"), load_hf(tmp_path / "many")
    assert a[0] == b[0]
    assert all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_our_sharded_folder_runs_in_transformers(family, tmp_path, float64_llama):
    """A folder save_hf splits over several files is read by from_pretrained: same logits."""
    if family == "gpt2":
        cfg = ltx.gpt2_config(vocab_size=V, d_model=16, n_layers=2, n_heads=4, max_seq_len=16,
                              tie_embeddings=True, dropout=0.0, init_std=0.3)
    else:
        cfg = ltx.llama_config(vocab_size=V, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2,
                               max_seq_len=16, tie_embeddings=False, init_std=0.3)
    model = ltx.create_model(cfg, backend="numpy", seed=7, dtype="float64")
    save_hf(model, tmp_path, max_shard_size="4KB")
    shards = sorted(p.name for p in tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 2
    assert not (tmp_path / "model.safetensors").exists()
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float64).eval()
    assert {p.dtype for p in hf.parameters()} == {torch.float64}
    tokens = _tokens(8)
    np.testing.assert_allclose(hf(torch.as_tensor(tokens)).logits.detach().numpy(),
                               model.forward(tokens), rtol=0, atol=BOUND)


def test_a_bfloat16_checkpoint_loads_exactly(tmp_path):
    """Published Llama weights are bfloat16: they widen to float32 without changing a bit."""
    hf = _hf_model("llama", tied=False, bias=False, kv_heads=2, seed=1).to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    cfg, params = load_hf(tmp_path)
    widened = {n: p.detach().to(torch.float32).numpy() for n, p in hf.named_parameters()}
    expected = from_hf_state(cfg, "llama", widened)
    assert all(params[k].dtype == np.float32 for k in params)
    assert all(np.array_equal(params[k], expected[k]) for k in expected)


def test_run_with_cache_attention_equals_transformers(tmp_path):
    """The weights ``run_with_cache`` returns are the ones ``transformers`` computes (GPT-2,
    whose eager attention stays in float64)."""
    hf = _hf_model("gpt2", tied=True, bias=True, kv_heads=None, seed=2)
    hf.save_pretrained(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, dtype=torch.float64, attn_implementation="eager").eval()
    cfg, params = load_hf(tmp_path, dtype="float64")
    tokens = _tokens(5)
    ref = hf(torch.as_tensor(tokens), output_attentions=True).attentions  # L of (B, H, T, T)
    for backend in _backends(cfg):
        model = ltx.create_model(cfg, backend=backend, params=params, dtype="float64")
        _, cache = model.run_with_cache(tokens)
        for i, weights in enumerate(ref):
            np.testing.assert_allclose(cache[f"blocks.{i}.attn.weights"], weights.detach().numpy(),
                                       rtol=0, atol=BOUND, err_msg=f"{backend} layer {i}")


# ============================================================================ Llama 3.1's RoPE
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500.0, "factor": 4.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def test_llama31_rope_scaling_against_transformers(tmp_path, monkeypatch, float64_llama):
    """A Llama 3.1-style folder (``rope_type: "llama3"``): the scaled frequencies equal
    ``transformers``' own, and the logits of every backend equal its model's.

    ``transformers`` computes the frequencies in float32, so they are compared to 1e-6
    relative, and the model runs its own (float32-rounded) frequencies with the cosines taken
    in float64; that leaves about 1e-7 in the logits, hence the bound 1e-6 here."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama import modeling_llama as ml

    def rotary(self, x, position_ids):  # transformers' frequencies, cosines in float64
        freqs = position_ids[..., None].to(torch.float64) * self.inv_freq.to(torch.float64)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    monkeypatch.setattr(ml.LlamaRotaryEmbedding, "forward", rotary)
    torch.manual_seed(0)
    conf = transformers.LlamaConfig(
        vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=None, eos_token_id=None, rms_norm_eps=1e-6, rope_parameters=LLAMA3_ROPE)
    hf = transformers.LlamaForCausalLM(conf).to(torch.float64).eval()
    with torch.no_grad():
        for _name, p in hf.named_parameters():
            p.copy_(0.2 * torch.randn_like(p) + (1.0 if p.ndim == 1 else 0.0))
    hf.save_pretrained(tmp_path)
    cfg, params = load_hf(tmp_path, dtype="float64")
    assert cfg.rope_scaling == RopeScaling(4.0, 1.0, 4.0, 16)
    assert config_to_hf(cfg)["rope_parameters"] == LLAMA3_ROPE | {"rope_theta": 500.0}

    # head width 4, wavelengths 2 pi and about 140 against the bounds 4 and 16: one frequency
    # is blended, the other stretched
    default = [500.0 ** (-i / 4) for i in (0, 2)]
    ours = cfg.rope_scaling.scale(default)
    theirs = ROPE_INIT_FUNCTIONS["llama3"](conf, "cpu")[0].double().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[0] < default[0]
    assert abs(ours[1] - default[1] / 4) < 1e-12

    tokens = _tokens(1)
    with torch.no_grad():
        ref = hf(torch.as_tensor(tokens)).logits.numpy()  # (B, T, V)
    for backend in _backends(cfg):
        model = ltx.create_model(cfg, backend=backend, params=params, dtype="float64")
        np.testing.assert_allclose(model.forward(tokens), ref, rtol=0, atol=1e-6,
                                   err_msg=backend)
    unscaled = ltx.create_model(cfg.replace(rope_scaling=None), backend="numpy", params=params,
                                dtype="float64")
    assert np.abs(unscaled.forward(tokens) - ref).max() > 1e-3  # the scaling is what matches
