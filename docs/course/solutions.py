r"""Solutions to the course's exercises, and the "backprop by hand" block.

The course pages fold each solution away and include it from this file with ``literalinclude``;
``tests/test_exercises.py`` checks every function here (gradients against finite differences in
float64, shapes against the package, counts against the models). Only NumPy and the standard
library are used, so a solution can be read without knowing the package.
"""

from __future__ import annotations

import math

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- step 1: the bigram model --------------------------------------------------------------------
def uniform_loss(V: int) -> float:
    r"""Exercise 1.1: the loss of a model that knows nothing.

    Equal logits give every one of the :math:`V` characters probability :math:`1/V`, so the
    cross-entropy is :math:`-\log(1/V) = \log V` at every position, whatever the target.
    """
    return math.log(V)


def bigram_table_grad(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Exercise 1.2: the gradient of the mean cross-entropy with respect to the bigram table.

    With :math:`N` positions, :math:`p_n = \mathrm{softmax}(W_{x_n})` and the one-hot target
    :math:`e_{y_n}`, the loss is :math:`\frac1N \sum_n -\log p_{n, y_n}` and

    .. math:: \delta W_x = \frac1N \sum_{n:\, x_n = x} (p_n - e_{y_n}),

    every row read adds its own softmax-minus-one-hot; rows never read get zero.
    """
    V = table.shape[0]
    x, y = x.reshape(-1), y.reshape(-1)  # (N,)
    p = softmax(table[x])  # (N, V)
    p[np.arange(x.size), y] -= 1.0  # p - one_hot(y)
    dtable = np.zeros((V, V), dtype=table.dtype)
    np.add.at(dtable, x, p / x.size)  # scatter-add: the same row may be read many times
    return dtable


def count_bigram_table(train: np.ndarray, V: int, alpha: float = 1.0) -> np.ndarray:
    r"""Exercise 1.3: the best bigram table, by counting.

    The loss is minimised, for each current character :math:`x`, by the empirical distribution
    of the next character :math:`x'`: with :math:`\#(x, x')` the number of such pairs seen,
    :math:`W_{xx'} = \log \frac{\#(x, x') + \alpha}{\sum_{x''} \#(x, x'') + V\alpha}`
    (add-:math:`\alpha` smoothing keeps unseen pairs finite on new text). The trained bigram
    can approach this table's validation loss but not beat it by much.
    """
    counts = np.zeros((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    counts += alpha
    return np.log(counts / counts.sum(axis=1, keepdims=True))  # (V, V) log-probabilities


def table_loss(table: np.ndarray, stream: np.ndarray) -> float:
    """Mean next-character cross-entropy of a bigram table of logits over a whole stream."""
    logp = table[stream[:-1]] - np.log(np.exp(table[stream[:-1]]).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(stream.size - 1), stream[1:]].mean())


# -- step 2: one attention head ------------------------------------------------------------------
def one_head_shapes(B: int, T: int, C: int, V: int) -> dict:
    """Exercise 2.1: the shapes in the one-head model for a batch of B windows of T tokens."""
    return {
        "x": (B, T),  # token ids
        "h": (B, T, C),  # token + position embeddings
        "q": (B, 1, T, C),  # one head: H = 1, D = C
        "scores": (B, 1, T, T),  # every query against every key
        "weights": (B, 1, T, T),  # softmax over the last axis (keys)
        "out": (B, T, C),  # heads merged, then W_o
        "logits": (B, T, V),
    }


def attention_one_head(x: np.ndarray, w_q, w_k, w_v, causal: bool = True) -> np.ndarray:
    r"""Exercise 2.2 ("break the mask"): one head, with or without the causal mask.

    Without the mask, the output at position :math:`t` mixes the values of positions after
    :math:`t`: a language model trained this way reads the answer (the next character is the
    input at :math:`t + 1`) and its training loss collapses, while it cannot generate. With the
    mask, :math:`\partial o_t / \partial x_{t'} = 0` for every :math:`t' > t`.
    """
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (B, T, D)
    s = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])  # (B, T, T)
    if causal:
        T = x.shape[1]
        s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    return softmax(s) @ v  # (B, T, D)


# -- step 3: multi-head attention ----------------------------------------------------------------
def attention_param_count(V: int, C: int, T: int, H: int) -> int:
    r"""Exercise 3.1: parameters of the one-head and multi-head models — the same for every H.

    Splitting into heads reshapes :math:`q, k, v` from :math:`(B, T, C)` to :math:`(B, H, T, D)`;
    the projections stay :math:`C \times C`, so :math:`H` does not appear:
    :math:`VC + TC + 4C^2 + CV`.
    """
    del H  # the point of the exercise
    return V * C + T * C + 4 * C * C + C * V


def score_std(D: int, n: int = 20_000, scaled: bool = True, seed: int = 0) -> float:
    r"""Exercise 3.2: the spread of one attention score for unit-variance queries and keys.

    :math:`q \cdot k = \sum_{d=1}^{D} q_d k_d` is a sum of :math:`D` independent terms of variance
    1, so its variance is :math:`D`; dividing by :math:`\sqrt D` brings it back to 1 whatever the
    head width — which is why the scale is :math:`1/\sqrt D` with :math:`D = C/H`, not
    :math:`1/\sqrt C`.
    """
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, n, D))
    s = (q * k).sum(axis=-1)
    return float((s / math.sqrt(D) if scaled else s).std())


# -- step 4: the block ---------------------------------------------------------------------------
def layernorm_backward_by_hand(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray,
                               eps: float) -> np.ndarray:
    r"""Exercise 4.2: :math:`\delta x` of LayerNorm, :math:`y = \gamma \odot (x - \mu) r`.

    With :math:`r = (\sigma^2 + \epsilon)^{-1/2}`, :math:`\hat x = (x - \mu) r` and the
    gradient reaching :math:`\hat x`, :math:`\delta\hat x = \gamma \odot \delta y`:
    :math:`\delta x = r\,(\delta\hat x - \overline{\delta\hat x} - \hat x\,
    \overline{\delta\hat x \odot \hat x})`, bars the mean over the row.
    """
    mu = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    x_hat = (x - mu) * r
    dx_hat = gamma * dy  # the gradient reaching x_hat
    return r * (dx_hat - dx_hat.mean(axis=-1, keepdims=True)
                - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))


def residual_grad_with_zero_branches(dy: np.ndarray) -> np.ndarray:
    r"""Exercise 4.1: a pre-norm block whose output projections :math:`W_o, W_{down}` are zero.

    Both branches then output zero, so the block is the identity, :math:`y = x`; the gradient
    reaching :math:`x` is :math:`\delta y` unchanged — the residual path carries it even
    through a block that computes nothing yet. (:math:`W_o` and :math:`W_{down}` still get a
    gradient, so training moves them off zero.)
    """
    return dy


# -- step 5: the GPT -----------------------------------------------------------------------------
def gpt_param_count(V: int, C: int, T: int, L: int, F: int) -> int:
    r"""Exercise 5.1: parameters of the course's GPT (no biases, LayerNorm gains only).

    Embeddings :math:`VC + TC`; per block two norm gains :math:`2C`, attention :math:`4C^2`,
    MLP :math:`2CF`; the final norm :math:`C` and the head :math:`CV`.
    """
    return V * C + T * C + L * (2 * C + 4 * C * C + 2 * C * F) + C + C * V


# -- backprop by hand: one pre-norm block ---------------------------------------------------------
_erf = np.vectorize(math.erf)


def _layernorm(x, gamma, eps):
    mu = x.mean(axis=-1, keepdims=True)  # (B, T, 1)
    r = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)  # (B, T, 1)
    x_hat = (x - mu) * r  # (B, T, C)
    return gamma * x_hat, (x_hat, r, gamma)


def _layernorm_backward(dy, cache):
    x_hat, r, gamma = cache
    dx_hat = gamma * dy  # (B, T, C)
    dx = r * (dx_hat - dx_hat.mean(-1, keepdims=True)
              - x_hat * (dx_hat * x_hat).mean(-1, keepdims=True))  # (B, T, C)
    dgamma = (dy * x_hat).sum(axis=(0, 1))  # (C,)
    return dx, dgamma


def block_forward_by_hand(x: np.ndarray, p: dict, H: int, eps: float = 1e-5):
    r"""One pre-norm block with GELU, no biases, written out in NumPy.

    ``p`` has the package's local names: ``attn_norm.weight``, ``attn.w_q`` .. ``attn.w_o``,
    ``mlp_norm.weight``, ``mlp.w_up``, ``mlp.w_down``. Returns ``(y, cache)``.
    """
    B, T, C = x.shape
    D = C // H
    # attention sublayer: x1 = x + attn(LN(x))
    h, ln1 = _layernorm(x, p["attn_norm.weight"], eps)  # (B, T, C)

    def split(z):
        return z.reshape(B, T, H, D).transpose(0, 2, 1, 3)  # (B, H, T, D)

    q, k, v = split(h @ p["attn.w_q"]), split(h @ p["attn.w_k"]), split(h @ p["attn.w_v"])
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)  # (B, H, T, T)
    s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    a = softmax(s)  # (B, H, T, T)
    z = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, C)  # (B, T, C), heads merged
    x1 = x + z @ p["attn.w_o"]  # (B, T, C)
    # feed-forward sublayer: y = x1 + W_down gelu(W_up LN(x1))
    h2, ln2 = _layernorm(x1, p["mlp_norm.weight"], eps)  # (B, T, C)
    u = h2 @ p["mlp.w_up"]  # (B, T, F)
    phi = 0.5 * (1.0 + _erf(u / math.sqrt(2.0)))  # (B, T, F), the normal CDF
    act = u * phi  # (B, T, F), gelu(u) = u Phi(u)
    y = x1 + act @ p["mlp.w_down"]  # (B, T, C)
    cache = (x, p, H, h, ln1, q, k, v, a, z, h2, ln2, u, phi, act)
    return y, cache


def block_backward_by_hand(dy: np.ndarray, cache) -> tuple[np.ndarray, dict]:
    r"""The backward pass of :func:`block_forward_by_hand`: the notebook's exercise, solved.

    Every line is the forward line it undoes, read backwards: a residual sum copies the
    gradient to both its inputs; ``z @ W`` sends ``dz = d(out) @ W.T`` and ``dW = z.T @ d(out)``;
    the softmax Jacobian gives ``ds = a * (da - sum(a * da))``.
    """
    x, p, H, h, ln1, q, k, v, a, z, h2, ln2, u, phi, act = cache
    B, T, C = x.shape
    D = C // H
    g = {}
    flat = lambda t: t.reshape(-1, t.shape[-1])  # noqa: E731  (B*T, n), for weight gradients

    # y = x1 + act @ w_down
    dx1 = dy.copy()  # (B, T, C), the residual path
    g["mlp.w_down"] = flat(act).T @ flat(dy)  # (F, C)
    dact = dy @ p["mlp.w_down"].T  # (B, T, F)
    # act = u * Phi(u): d act / du = Phi(u) + u * pdf(u)
    pdf = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)  # (B, T, F)
    du = dact * (phi + u * pdf)  # (B, T, F)
    g["mlp.w_up"] = flat(h2).T @ flat(du)  # (C, F)
    dh2 = du @ p["mlp.w_up"].T  # (B, T, C)
    dln2, g["mlp_norm.weight"] = _layernorm_backward(dh2, ln2)
    dx1 = dx1 + dln2  # (B, T, C), the two paths into x1 add
    # x1 = x + z @ w_o
    dx = dx1.copy()  # (B, T, C)
    g["attn.w_o"] = flat(z).T @ flat(dx1)  # (C, C)
    dz = (dx1 @ p["attn.w_o"].T).reshape(B, T, H, D).transpose(0, 2, 1, 3)  # (B, H, T, D)
    # z = a @ v (heads merged)
    da = dz @ v.transpose(0, 1, 3, 2)  # (B, H, T, T)
    dv = a.transpose(0, 1, 3, 2) @ dz  # (B, H, T, D)
    ds = a * (da - (a * da).sum(axis=-1, keepdims=True))  # (B, H, T, T), softmax backward
    ds = ds / math.sqrt(D)  # the scale of the scores
    dq = ds @ k  # (B, H, T, D)
    dk = ds.transpose(0, 1, 3, 2) @ q  # (B, H, T, D)

    def merge(t):
        return t.transpose(0, 2, 1, 3).reshape(B, T, C)  # (B, T, C)

    dh = np.zeros_like(h)
    for name, dt in (("attn.w_q", dq), ("attn.w_k", dk), ("attn.w_v", dv)):
        g[name] = flat(h).T @ flat(merge(dt))  # (C, C)
        dh += merge(dt) @ p[name].T  # (B, T, C): h feeds all three projections
    dln1, g["attn_norm.weight"] = _layernorm_backward(dh, ln1)
    return dx + dln1, g


# -- the derivation chapters' exercises -----------------------------------------------------------
def linear_grads(x: np.ndarray, w: np.ndarray, dy: np.ndarray):
    r"""Linear maps: the three gradients of :math:`y = xW + b` for a batched input.

    Each output row :math:`y_n = x_n W + b` contributes :math:`x_n^\top \delta y_n` to
    :math:`\delta W` and :math:`\delta y_n` to :math:`\delta b`; all leading axes are positions:

    .. math:: \delta x = \delta y\, W^\top, \quad \delta W = \sum_n x_n^\top \delta y_n, \quad
       \delta b = \sum_n \delta y_n .
    """
    n, m = w.shape
    dx = dy @ w.T  # (..., n)
    dw = x.reshape(-1, n).T @ dy.reshape(-1, m)  # (n, m)
    db = dy.reshape(-1, m).sum(axis=0)  # (m,)
    return dx, dw, db


def embedding_grad(tokens: np.ndarray, dh: np.ndarray, V: int) -> np.ndarray:
    r"""Embeddings: :math:`\delta E` when a token occurs more than once.

    Row :math:`x` of :math:`E` was read at every position holding token :math:`x`, so its
    gradient is the *sum* of those positions' :math:`\delta \xi`. ``dE[tokens] += dh`` would be
    wrong: with repeated indices NumPy's buffered fancy assignment keeps only one of them;
    ``np.add.at`` accumulates.
    """
    dE = np.zeros((V, dh.shape[-1]))
    np.add.at(dE, tokens.reshape(-1), dh.reshape(-1, dh.shape[-1]))
    return dE


def rope_score(q: np.ndarray, k: np.ndarray, t: int, u: int, theta: float = 10000.0) -> float:
    r"""Positions: the score of a query at position :math:`t` and a key at :math:`u` under RoPE.

    RoPE rotates each pair of coordinates :math:`(i, i + D/2)` by the angle
    :math:`t\, \theta^{-2i/D}`. Rotations preserve dot products up to their difference,
    :math:`(R_t q) \cdot (R_u k) = q \cdot (R_{u - t} k)`, so the score depends on :math:`t - u`
    only: shifting both positions by the same amount leaves it unchanged.
    """
    D = q.shape[-1]
    freq = theta ** (-np.arange(D // 2) * 2.0 / D)  # (D/2,)

    def rotate(x, pos):
        cos, sin = np.cos(pos * freq), np.sin(pos * freq)
        a, b = x[: D // 2], x[D // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos])  # rotate-half layout

    return float(rotate(q, t) @ rotate(k, u))


def softmax_backward_by_hand(dp: np.ndarray, p: np.ndarray) -> np.ndarray:
    r"""Softmax: the vector-Jacobian product.

    :math:`\partial p_j / \partial z_i = p_j(I_{ij} - p_i)`, so
    :math:`\delta z_i = \sum_j \delta p_j\, p_j (I_{ij} - p_i)
    = p_i\, (\delta p_i - \sum_j p_j\, \delta p_j)`: no :math:`V \times V` Jacobian is formed.
    """
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True))


def uniform_causal_weights(T: int) -> np.ndarray:
    r"""Attention: the weights when every score is equal (e.g. all-zero query weights).

    Row :math:`i` may attend to the :math:`i + 1` positions :math:`j \le i`; equal scores give
    each of them :math:`1 / (i + 1)` — the head outputs the running mean of the values.
    """
    visible = np.tril(np.ones((T, T)))
    return visible / visible.sum(axis=1, keepdims=True)


def normalised_rms(rms: float, eps: float) -> float:
    r"""Norms: the RMS of RMSNorm's output (gain 1) for an input row of a given RMS.

    With :math:`\operatorname{rms}(x) = (\tfrac1C \sum_i x_i^2)^{1/2}`,
    :math:`\hat x = x / \sqrt{\operatorname{rms}(x)^2 + \epsilon}` and its RMS is
    :math:`\operatorname{rms}(x) / \sqrt{\operatorname{rms}(x)^2 + \epsilon}`: 1 only when
    :math:`\operatorname{rms}(x)^2 \gg \epsilon`; for
    :math:`\operatorname{rms}(x)^2 = \epsilon` it is :math:`1/\sqrt 2`, and it goes to 0 with
    the input.
    """
    return rms / math.sqrt(rms * rms + eps)


def gelu_grad(u: np.ndarray) -> np.ndarray:
    r"""Activations: :math:`\frac{d}{du}\, u\,\Phi(u) = \Phi(u) + u\,\varphi(u)`.

    The product rule, with :math:`\Phi' = \varphi = e^{-u^2/2}/\sqrt{2\pi}`. Unlike ReLU's, the
    derivative is negative for :math:`u \lesssim -0.75` and exceeds 1 for :math:`u \gtrsim 0.75`.
    """
    phi = 0.5 * (1.0 + _erf(u / math.sqrt(2.0)))
    return phi + u * np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def swiglu_equal_width(F: int) -> float:
    r"""Feed-forward: the SwiGLU hidden width with as many weights as a GELU MLP of width F.

    The MLP has :math:`W_{up}, W_{down}`: :math:`2CF` weights; SwiGLU adds a gate,
    :math:`3CF'`. Equal for :math:`F' = 2F/3` — why Llama's hidden width is about
    :math:`\tfrac23 \cdot 4C`.
    """
    return 2.0 * F / 3.0


def inverted_dropout_mean(p: float, n: int = 200_000, seed: int = 0) -> float:
    r"""Dropout: the mean of :math:`m \odot x` for inverted-dropout masks and :math:`x = 1`.

    Entries are 0 with probability :math:`\rho` (the drop rate ``p``) and :math:`1/(1-\rho)`
    otherwise, so :math:`\mathbb{E}[m] = (1 - \rho) / (1 - \rho) = 1`: no rescaling is needed
    at evaluation.
    """
    rng = np.random.default_rng(seed)
    mask = (rng.random(n) >= p) / (1.0 - p)
    return float(mask.mean())


def cross_entropy_grad(logits: np.ndarray, targets: np.ndarray,
                       ignore_index: int = -100) -> np.ndarray:
    r"""Loss: :math:`\delta\,\text{logits}` of the mean cross-entropy with ignored targets.

    Only the :math:`N` positions whose target is not ``ignore_index`` count, each with weight
    :math:`1/N`: :math:`\delta z_n = (\mathrm{softmax}(z_n) - e_{y_n}) / N` there, and 0 at
    ignored positions.
    """
    keep = targets != ignore_index  # (B, T)
    N = max(int(keep.sum()), 1)
    d = softmax(logits)  # (B, T, V)
    idx = np.nonzero(keep)
    d[idx + (targets[keep],)] -= 1.0
    return d * keep[..., None] / N
