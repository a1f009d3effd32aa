"""Optimisers and schedules: NumPy and pure-Python versions against torch.optim, step for step.

Each property draws a small model-shaped parameter dict (canonical names, some that decay and
some that do not, a 3-D one to exercise the nested-list recursion), a sequence of float64
gradients spanning six orders of magnitude and per-step learning rates, runs our optimiser in
both backends and torch's, and asserts agreement to 1e-12 relative. The two backends of ours
execute the same floating-point operations in the same order, so they must agree bit for bit.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from literate_tx import schedules
from literate_tx.numpy_backend import optim as np_optim
from literate_tx.python_backend import optim as py_optim

RTOL = 1e-12

# --------------------------------------------------------------------------- problem generation


def make_shapes(V: int, C: int, F: int) -> dict[str, tuple[int, ...]]:
    """Canonical names (see DEVELOPING.md) plus one 3-D tensor to test deeper nesting."""
    return {
        "embed.tokens": (V, C),  # decays (a matrix, like nanoGPT)
        "blocks.0.attn_norm.weight": (C,),  # norm gain: no decay
        "blocks.0.attn_norm.bias": (C,),  # norm bias: no decay
        "blocks.0.attn.w_q": (C, C),  # decays
        "blocks.0.attn.b_q": (C,),  # bias: no decay
        "blocks.0.mlp.w_up": (C, F),  # decays
        "blocks.0.mlp.b_up": (F,),  # bias: no decay
        "final_norm.weight": (C,),  # no decay
        "lm_head.w": (C, V),  # decays
        "extra.kernel": (2, C, 2),  # 3-D: decays, nested three deep in the Python backend
    }


@st.composite
def problems(draw):
    """Draw (params, grad sequence, per-step lrs) in float64."""
    V = draw(st.integers(1, 4))
    C = draw(st.integers(1, 4))
    F = draw(st.integers(1, 5))
    n_steps = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shapes = make_shapes(V, C, F)
    params = {n: rng.standard_normal(s) for n, s in shapes.items()}
    grads = []
    for _ in range(n_steps):
        # each tensor gets its own scale, 1e-3 .. 1e3, so Adam's normalisation matters
        grads.append(
            {n: rng.standard_normal(s) * 10 ** rng.uniform(-3, 3) for n, s in shapes.items()}
        )
    use_schedule = draw(st.booleans())
    if use_schedule:
        lrs = [
            schedules.warmup_cosine(t, max_lr=0.1, warmup_steps=2, total_steps=n_steps + 2)
            for t in range(n_steps)
        ]
    else:
        lrs = [None] * n_steps
    return params, grads, lrs


def to_lists(params: dict[str, np.ndarray]) -> dict[str, list]:
    return {n: p.tolist() for n, p in params.items()}


def run_ours(module, cls_name, params, grads, lrs, **kwargs):
    """Run our optimiser in place on a fresh copy; returns params as ndarrays."""
    if module is np_optim:
        ps = {n: p.copy() for n, p in params.items()}
        gs = grads
    else:
        ps = to_lists(params)
        gs = [to_lists(g) for g in grads]
    opt = getattr(module, cls_name)(ps, **kwargs)
    for g, lr in zip(gs, lrs, strict=True):
        opt.step(g, lr=lr)
    return {n: np.asarray(p) for n, p in ps.items()}, opt


def run_torch(cls_name, params, grads, lrs, decay, *, lr, weight_decay=0.0, **kwargs):
    """The same run with torch.optim: one param group that decays, one that does not."""
    torch = pytest.importorskip("torch")
    tp = {n: torch.tensor(p, dtype=torch.float64, requires_grad=True) for n, p in params.items()}
    groups = [
        {"params": [t for n, t in tp.items() if decay[n]], "weight_decay": weight_decay},
        {"params": [t for n, t in tp.items() if not decay[n]], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    opt = getattr(torch.optim, cls_name)(groups, lr=lr, foreach=False, **kwargs)
    for g, step_lr in zip(grads, lrs, strict=True):
        for n, t in tp.items():
            t.grad = torch.tensor(g[n], dtype=torch.float64)
        for group in opt.param_groups:
            group["lr"] = lr if step_lr is None else step_lr
        opt.step()
    return {n: t.detach().numpy() for n, t in tp.items()}


def assert_all_match(cls_name, params, grads, lrs, *, decay_filter="default", **hyper):
    """Our NumPy and Python runs agree exactly; both agree with torch to RTOL.

    ``decay_filter`` is "default" (the class default), None (all decay) or "names"
    (each backend's ``default_decay_filter``).
    """
    runs = {}
    for module in (np_optim, py_optim):
        kwargs = dict(hyper)
        if decay_filter != "default":
            kwargs["decay_filter"] = module.default_decay_filter if decay_filter else None
        runs[module] = run_ours(module, cls_name, params, grads, lrs, **kwargs)
    (ours_np, opt), (ours_py, py_opt) = runs[np_optim], runs[py_optim]
    assert py_opt.decay == opt.decay
    for n in params:
        np.testing.assert_array_equal(ours_py[n], ours_np[n], err_msg=n)
    theirs = run_torch(cls_name, params, grads, lrs, opt.decay, **hyper)
    scale = max(float(np.abs(p).max()) for p in theirs.values())
    for n in params:
        np.testing.assert_allclose(ours_np[n], theirs[n], rtol=RTOL, atol=RTOL * scale, err_msg=n)


# --------------------------------------------------------------------------- against torch.optim


@given(
    problems(),
    st.floats(1e-4, 1.0),
    st.sampled_from([0.0, 0.5, 0.9]),
    st.sampled_from([0.0, 0.3]),
    st.sampled_from([0.0, 1e-2, 0.3]),
    st.booleans(),
)
def test_sgd_matches_torch(problem, lr, momentum, dampening, weight_decay, nesterov):
    params, grads, lrs = problem
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False
    assert_all_match(
        "SGD",
        params,
        grads,
        lrs,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
    )


@given(
    problems(),
    st.floats(1e-4, 1.0),
    st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.0, 0.9, 0.999])),
    st.sampled_from([1e-10, 1e-8, 1e-3]),
    st.sampled_from([0.0, 1e-2, 0.3]),
    st.sampled_from([None, "names"]),
)
def test_adam_matches_torch(problem, lr, betas, eps, weight_decay, decay_filter):
    params, grads, lrs = problem
    assert_all_match(
        "Adam",
        params,
        grads,
        lrs,
        decay_filter=decay_filter,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
    )


@given(
    problems(),
    st.floats(1e-4, 1.0),
    st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.0, 0.9, 0.999])),
    st.sampled_from([1e-10, 1e-8, 1e-3]),
    st.sampled_from([0.0, 1e-2, 0.3]),
)
def test_adamw_matches_torch(problem, lr, betas, eps, weight_decay):
    params, grads, lrs = problem
    assert_all_match(
        "AdamW", params, grads, lrs, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )


def test_adamw_default_decay_groups():
    """Matrices (embeddings included) decay; biases and norm parameters do not."""
    shapes = make_shapes(3, 2, 4)
    opt = np_optim.AdamW({n: np.zeros(s) for n, s in shapes.items()})
    decayed = sorted(n for n, d in opt.decay.items() if d)
    assert decayed == [
        "blocks.0.attn.w_q",
        "blocks.0.mlp.w_up",
        "embed.tokens",
        "extra.kernel",
        "lm_head.w",
    ]
    py = py_optim.AdamW({n: np.zeros(s).tolist() for n, s in shapes.items()})
    assert py.decay == opt.decay
    assert np_optim.Adam({n: np.zeros(s) for n, s in shapes.items()}).decay == dict.fromkeys(
        shapes, True
    )


# --------------------------------------------------------------------------- gradient clipping


@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3), st.floats(-3, 3))
def test_clip_grad_norm_matches_torch(seed, max_norm, log_scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    grads = {n: rng.standard_normal(s) * 10**log_scale for n, s in make_shapes(3, 4, 5).items()}
    ours_np = {n: g.copy() for n, g in grads.items()}
    ours_py = to_lists(grads)
    tensors = [
        torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()
    ]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.tensor(g)
    expected = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm, foreach=False))
    total_np = np_optim.clip_grad_norm(ours_np, max_norm)
    total_py = py_optim.clip_grad_norm(ours_py, max_norm)
    assert math.isclose(total_np, expected, rel_tol=RTOL)
    assert math.isclose(total_py, expected, rel_tol=RTOL)
    for (n, g), t in zip(ours_np.items(), tensors, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=RTOL, atol=0, err_msg=n)
        np.testing.assert_allclose(np.asarray(ours_py[n]), g, rtol=RTOL, atol=0, err_msg=n)
    clipped_norm = math.sqrt(sum(float((g**2).sum()) for g in ours_np.values()))
    assert clipped_norm <= max_norm * (1 + RTOL)


def test_clip_grad_norm_leaves_short_gradients_alone():
    grads = {"w": np.array([0.3, 0.4])}
    assert np_optim.clip_grad_norm(grads, 1.0) == pytest.approx(0.5)
    assert grads["w"].tolist() == [0.3, 0.4]
    pgrads = {"w": [[0.3], [0.4]]}
    assert py_optim.clip_grad_norm(pgrads, 1.0) == pytest.approx(0.5)
    assert pgrads["w"] == [[0.3], [0.4]]


@pytest.mark.parametrize("module", [np_optim, py_optim])
@pytest.mark.parametrize("max_norm", [0.0, -1.0, "1"])
def test_clip_grad_norm_rejects_bad_max_norm(module, max_norm):
    with pytest.raises(ValueError, match="max_norm"):
        module.clip_grad_norm({"w": np.ones(2) if module is np_optim else [1.0]}, max_norm)


# --------------------------------------------------------------------------- exact resume

OPTIMISERS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
    ("SGD", {"lr": 0.05}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
]


def savez_roundtrip(state: dict) -> dict:
    """What a checkpoint would hold: np.savez then np.load without pickle."""
    f = io.BytesIO()
    np.savez(f, **state)
    f.seek(0)
    with np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize(("cls_name", "hyper"), OPTIMISERS)
@pytest.mark.parametrize(
    ("saver", "loader"),
    [(np_optim, np_optim), (py_optim, py_optim), (np_optim, py_optim), (py_optim, np_optim)],
    ids=["numpy", "python", "numpy->python", "python->numpy"],
)
@given(problem=problems(), split=st.integers(0, 6))
def test_state_dict_resume_is_exact(cls_name, hyper, saver, loader, problem, split):
    params, grads, lrs = problem
    split = min(split, len(grads))
    uninterrupted, _ = run_ours(np_optim, cls_name, params, grads, lrs, **hyper)

    # first part of the run in `saver`'s backend, then a checkpoint
    first, opt = run_ours(saver, cls_name, params, grads[:split], lrs[:split], **hyper)
    state = savez_roundtrip(opt.state_dict())

    # a fresh optimiser (different lr, to prove it is restored) resumes in `loader`'s backend
    fresh = {**hyper, "lr": 123.0}
    if loader is np_optim:
        ps = {n: p.copy() for n, p in first.items()}
        rest = grads[split:]
    else:
        ps = to_lists(first)
        rest = [to_lists(g) for g in grads[split:]]
    resumed = getattr(loader, cls_name)(ps, **fresh)
    resumed.load_state_dict(state)
    assert resumed.lr == hyper["lr"]
    assert resumed.step_count == split
    for g, lr in zip(rest, lrs[split:], strict=True):
        resumed.step(g, lr=lr)
    for n in params:
        np.testing.assert_array_equal(np.asarray(ps[n]), uninterrupted[n], err_msg=n)


@pytest.mark.parametrize("module", [np_optim, py_optim])
def test_load_state_dict_rejects_mismatches(module):
    def p():
        return {"w": np.zeros((2, 3)) if module is np_optim else np.zeros((2, 3)).tolist()}

    adam = module.Adam(p())
    state = adam.state_dict()
    with pytest.raises(ValueError, match="cannot be loaded into AdamW"):
        module.AdamW(p()).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        module.SGD(p(), momentum=0.9).load_state_dict(module.SGD(p()).state_dict())
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        module.Adam(p()).load_state_dict({**state, "m.w": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="beta1=1.5"):
        module.Adam(p()).load_state_dict({**state, "beta1": 1.5})
    with pytest.raises(ValueError, match="step"):
        module.Adam(p()).load_state_dict({**state, "step": -1})
    # a failed load changes nothing
    fresh = module.Adam(p(), lr=0.5)
    with pytest.raises(ValueError, match="eps"):
        fresh.load_state_dict({**state, "eps": -1.0})
    assert fresh.lr == 0.5


# --------------------------------------------------------------------------- API behaviour


@pytest.mark.parametrize("module", [np_optim, py_optim])
@pytest.mark.parametrize("cls_name", ["SGD", "Adam", "AdamW"])
def test_step_updates_in_place_and_leaves_grads_alone(module, cls_name):
    if module is np_optim:
        w, g = np.ones((2, 2)), np.full((2, 2), 0.5)
    else:
        w, g = [[1.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [0.5, 0.5]]
    row = w[0]  # a view (NumPy) or the inner list object (Python) held by the caller
    opt = getattr(module, cls_name)({"w": w}, lr=0.1, weight_decay=0.1)
    opt.step({"w": g})
    assert row[0] != 1.0  # the caller's object itself changed
    assert np.asarray(g).tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_python_backend_accepts_ndarray_grads():
    w = [[1.0, 2.0]]
    opt = py_optim.SGD({"w": w}, lr=1.0)
    opt.step({"w": np.array([[0.5, 0.5]])})
    assert w == [[0.5, 1.5]]


@pytest.mark.parametrize("module", [np_optim, py_optim])
def test_step_validates_grads_and_lr(module):
    def arr(*shape):
        return np.zeros(shape) if module is np_optim else np.zeros(shape).tolist()

    opt = module.AdamW({"w": arr(2, 2)})
    with pytest.raises(ValueError, match=r"missing \['w'\], unexpected \['v'\]"):
        opt.step({"v": arr(2, 2)})
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(2, 3\)"):
        opt.step({"w": arr(2, 3)})
    with pytest.raises(ValueError, match="lr=-1"):
        opt.step({"w": arr(2, 2)}, lr=-1.0)
    assert opt.step_count == 0


@pytest.mark.parametrize("module", [np_optim, py_optim])
@pytest.mark.parametrize(
    ("cls_name", "kwargs", "match"),
    [
        ("SGD", {"lr": -0.1}, "lr=-0.1"),
        ("SGD", {"lr": float("nan")}, "lr=nan"),
        ("SGD", {"momentum": -1.0}, "momentum=-1.0"),
        ("SGD", {"dampening": 2.0}, "dampening=2.0"),
        ("SGD", {"nesterov": True}, "nesterov=True needs momentum > 0"),
        ("SGD", {"momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening == 0"),
        ("SGD", {"nesterov": "yes"}, "nesterov='yes'"),
        ("Adam", {"betas": (1.0, 0.9)}, "beta1=1.0"),
        ("Adam", {"betas": (0.9,)}, "betas="),
        ("Adam", {"eps": -1e-8}, "eps=-1e-08"),
        ("AdamW", {"weight_decay": -0.1}, "weight_decay=-0.1"),
    ],
)
def test_hyperparameter_validation(module, cls_name, kwargs, match):
    w = np.zeros(2) if module is np_optim else [0.0, 0.0]
    with pytest.raises(ValueError, match=match):
        getattr(module, cls_name)({"w": w}, **kwargs)


def test_params_type_validation():
    with pytest.raises(TypeError, match="writeable floating-point"):
        np_optim.SGD({"w": np.zeros(2, dtype=int)})
    with pytest.raises(TypeError, match="nested list"):
        py_optim.SGD({"w": (0.0, 1.0)})
    with pytest.raises(ValueError, match="ragged"):
        py_optim.SGD({"w": [[0.0, 1.0], [2.0]]})


# --------------------------------------------------------------------------- schedules

steps_and_rates = st.tuples(
    st.integers(0, 50),  # warmup_steps
    st.integers(1, 500),  # decay length, total_steps - warmup_steps
    st.floats(1e-6, 10.0),  # max_lr
    st.floats(0.0, 1.0),  # min_lr as a fraction of max_lr
)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
@given(steps_and_rates)
def test_schedule_shape(kind, args):
    warmup, decay_len, max_lr, min_frac = args
    total = warmup + decay_len
    min_lr = min_frac * max_lr
    fn = schedules.warmup_cosine if kind == "cosine" else schedules.warmup_linear
    lrs = [
        fn(s, max_lr=max_lr, warmup_steps=warmup, total_steps=total, min_lr=min_lr)
        for s in range(total + 5)
    ]
    sched = schedules.Schedule(kind, max_lr, warmup, total, min_lr)
    assert [sched(s) for s in range(total + 5)] == lrs
    if warmup > 0:
        assert lrs[0] == 0.0
        assert lrs[1] == max_lr / warmup
    warm = lrs[: warmup + 1]
    assert all(a <= b for a, b in zip(warm, warm[1:], strict=False))  # warmup rises
    assert lrs[warmup] == max_lr  # exactly the peak at the end of warmup
    decay = lrs[warmup : total + 1]
    tol = 4 * math.ulp(max_lr)
    assert all(b <= a + tol for a, b in zip(decay, decay[1:], strict=False))  # decay never rises
    assert all(0.0 <= x <= max_lr for x in warm)
    assert all(min_lr <= x <= max_lr for x in lrs[warmup:])
    assert lrs[total:] == [min_lr] * 5  # exactly min_lr at the end, then flat


@given(steps_and_rates)
def test_cosine_against_closed_form(args):
    """torch's CosineAnnealingLR closed form, shifted by the warmup."""
    warmup, decay_len, max_lr, min_frac = args
    min_lr = min_frac * max_lr
    for k in range(decay_len + 1):
        expected = min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * k / decay_len)) / 2
        got = schedules.warmup_cosine(
            warmup + k,
            max_lr=max_lr,
            warmup_steps=warmup,
            total_steps=warmup + decay_len,
            min_lr=min_lr,
        )
        assert math.isclose(got, expected, rel_tol=1e-14, abs_tol=1e-15 * max_lr)


def test_linear_midpoint_and_constant():
    kw = {"max_lr": 1.0, "warmup_steps": 0, "total_steps": 4, "min_lr": 0.2}
    assert schedules.warmup_linear(2, **kw) == pytest.approx(0.6)
    constant = [schedules.constant(s, max_lr=0.3, warmup_steps=3) for s in range(5)]
    assert constant == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3], rel=1e-15)
    assert constant[3:] == [0.3, 0.3]
    assert schedules.Schedule("constant", 0.3, warmup_steps=3)(1) == pytest.approx(0.1, rel=1e-15)


def test_schedule_is_frozen():
    sched = schedules.Schedule("cosine", 1.0, 0, 10)
    with pytest.raises(AttributeError):
        sched.max_lr = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: schedules.warmup_cosine(-1, max_lr=1, warmup_steps=0, total_steps=5), "step=-1"),
        (lambda: schedules.warmup_cosine(1.5, max_lr=1, warmup_steps=0, total_steps=5), "step=1.5"),
        (
            lambda: schedules.warmup_cosine(True, max_lr=1, warmup_steps=0, total_steps=5),
            "step=True",
        ),
        (
            lambda: schedules.warmup_linear(0, max_lr=1, warmup_steps=5, total_steps=5),
            "total_steps=5",
        ),
        (
            lambda: schedules.warmup_linear(0, max_lr=1, warmup_steps=-2, total_steps=5),
            "warmup_steps=-2",
        ),
        (lambda: schedules.warmup_cosine(0, max_lr=-1, warmup_steps=0, total_steps=5), "max_lr=-1"),
        (
            lambda: schedules.warmup_cosine(0, max_lr=1, warmup_steps=0, total_steps=5, min_lr=2),
            "min_lr=2",
        ),
        (lambda: schedules.constant(0, max_lr=float("inf")), "max_lr=inf"),
        (lambda: schedules.Schedule("step", 1.0), "kind='step'"),
        (lambda: schedules.Schedule("constant", 1.0, total_steps=5), "kind='constant'"),
        (lambda: schedules.Schedule("linear", 1.0), "total_steps=None"),
    ],
)
def test_schedule_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_integer_steps_are_accepted():
    kw = {"max_lr": 1.0, "warmup_steps": np.int64(2), "total_steps": np.int64(6)}
    assert schedules.warmup_linear(np.int64(3), **kw) == 0.75
