r"""One configuration for every backend.

A :class:`ModelConfig` is a frozen dataclass that names every architectural switch of the
decoder-only transformer built in this package. The same object drives the pure-Python, NumPy and
PyTorch backends, and together with :mod:`literate_tx.params` it fixes the names and shapes of every
weight, so that parameters move freely between backends.

The switches
------------
========================  ==================================================================
field                     meaning
========================  ==================================================================
``vocab_size`` (V)        number of distinct token ids
``d_model`` (C)           width of the residual stream
``n_layers`` (L)          number of transformer blocks
``n_heads`` (H)           attention heads per block; the head width is ``D = C / H``
``n_kv_heads`` (G)        key/value heads (grouped-query attention); ``None`` means ``H``
``d_ff`` (F)              hidden width of the feed-forward sublayer
``max_seq_len``           longest sequence the model accepts (size of learned position table)
``norm``                  ``"layernorm"``, ``"rmsnorm"`` or ``"none"``
``residual``              ``"pre"``, ``"post"`` or ``"sandwich"`` (where the norms sit)
``activation``            ``"relu"``, ``"gelu"`` (erf), ``"gelu_tanh"``, ``"swish"``, ``"swiglu"``
``position``              ``"sinusoidal"``, ``"learned"``, ``"rope"``, ``"alibi"``, ``"none"``
``bias``                  biases in every linear map and in LayerNorm
``tie_embeddings``        the output head reuses the token embedding matrix (transposed)
``dropout``               probability of zeroing an activation in training mode
``norm_eps``              the :math:`\epsilon` inside the norm's square root
``rope_theta``            base :math:`\Theta` of the RoPE frequencies
``rope_scaling``          Llama 3.1's stretch of the slow RoPE frequencies (:class:`RopeScaling`)
``init_std``              standard deviation of the initial weights (see :mod:`literate_tx.params`)
========================  ==================================================================

Presets
-------
:func:`gpt2_config` and :func:`llama_config` reproduce the conventions of two published families,
so that their checkpoints map one to one onto the canonical layout:

* **GPT-2** — learned absolute positions added to the token embedding; pre-LN residuals with
  LayerNorm (``eps = 1e-5``, with bias) and a final LayerNorm; GELU with the tanh approximation;
  biases in every linear map; the LM head tied to the token embedding; dropout 0.1 in training.
* **Llama** — RMSNorm (``eps = 1e-5`` for Llama 2/3, ``1e-6`` for Llama 1) in the pre-norm position
  and a final RMSNorm; a SwiGLU feed-forward with separate gate, up and down projections,
  :math:`\mathrm{down}(\mathrm{silu}(x W_{gate}) \odot x W_{up})`; rotary position embeddings in the
  *rotate-half* layout, which pairs dimension :math:`i` of a head with dimension :math:`i + D/2`;
  no biases anywhere; an untied LM head; no dropout. Llama 2 70B and Llama 3 add grouped-query
  attention (``n_kv_heads = 8``); Llama 1 and the smaller Llama 2 models have one key/value head
  per query head.

Grouped-query attention
-----------------------
With ``n_kv_heads = G`` smaller than ``n_heads = H`` the :math:`H` query heads share :math:`G`
key/value heads: query head :math:`h` attends with key/value head
:math:`\nu(h) = \lfloor h / R \rfloor`, :math:`R = H / G` (the consecutive grouping of Llama's
``repeat_kv``). :math:`W_k, W_v` shrink to :math:`(C, G D)` and the key/value cache to :math:`G`
heads. ``G = H`` is ordinary multi-head
attention and ``G = 1`` multi-query attention. The derivation is in
:mod:`literate_tx.numpy_backend.attention`.

Examples
--------
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(vocab_size=50, d_model=64, n_layers=2, n_heads=4, d_ff=128, max_seq_len=32)
>>> cfg.d_head
16
>>> cfg.replace(norm="rmsnorm").norm
'rmsnorm'
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NORMS",
    "RESIDUALS",
    "ACTIVATIONS",
    "POSITIONS",
    "ModelConfig",
    "RopeScaling",
    "gpt2_config",
    "llama_config",
]

NORMS = ("layernorm", "rmsnorm", "none")
RESIDUALS = ("pre", "post", "sandwich")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "swish", "swiglu")
POSITIONS = ("sinusoidal", "learned", "rope", "alibi", "none")


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


@dataclass(frozen=True)
class RopeScaling:
    r"""Llama 3.1's RoPE frequency scaling (``rope_type: "llama3"``), for longer contexts.

    A model trained with contexts of :math:`T_0` tokens (``original_max_seq_len``) has never
    seen a rotation angle :math:`t\theta_i` beyond :math:`T_0 \theta_i`. Llama 3.1 stretches
    the context by a ``factor`` :math:`f` without touching what the fast frequencies encode.
    Each frequency is judged by its wavelength :math:`\Lambda_i = 2\pi / \theta_i`, against
    two bounds :math:`T_0 / f_{hi}` and :math:`T_0 / f_{lo}` (``high_freq_factor``,
    ``low_freq_factor``):

    .. math::

        \theta_i' = \begin{cases}
            \theta_i & \Lambda_i < T_0 / f_{hi} \quad\text{(fast: many turns within }
                T_0 \text{, kept)}\\
            \theta_i / f & \Lambda_i > T_0 / f_{lo} \quad\text{(slow: stretched)}\\
            (1 - \varpi_i)\, \theta_i / f + \varpi_i\, \theta_i & \text{otherwise},
            \quad \varpi_i = \dfrac{T_0 / \Lambda_i - f_{lo}}{f_{hi} - f_{lo}}.
        \end{cases}

    The middle band blends the two linearly in :math:`T_0/\Lambda_i`, the number of turns a
    frequency makes within :math:`T_0`, so :math:`\theta'` is continuous at both bounds.
    Only the angles change; queries, keys and the backward pass of eq. (rope) are as before,
    with :math:`\theta'` for :math:`\theta`.

    Parameters
    ----------
    factor : float
        :math:`f \ge 1` (Llama 3.1: 8, Llama 3.2: 32).
    low_freq_factor, high_freq_factor : float
        :math:`0 < f_{lo} < f_{hi}` (Llama 3.x: 1 and 4).
    original_max_seq_len : int
        :math:`T_0` (Llama 3.x: 8192).

    Raises
    ------
    ValueError
        Naming the field, the value received and what is allowed.

    Examples
    --------
    >>> r = RopeScaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
    ...                 original_max_seq_len=64)
    >>> [round(f, 6) for f in r.scale([1.0, 0.1, 0.01, 0.001])]
    [1.0, 0.013042, 0.00125, 0.000125]
    """

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_seq_len: int

    def __post_init__(self) -> None:
        for name in ("factor", "low_freq_factor", "high_freq_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"rope_scaling.{name}={value!r} must be a number > 0")
        if not self.factor >= 1:
            raise ValueError(f"rope_scaling.factor={self.factor!r} must be >= 1")
        if not self.low_freq_factor < self.high_freq_factor:
            raise ValueError(f"rope_scaling.low_freq_factor={self.low_freq_factor!r} must be "
                             f"< high_freq_factor={self.high_freq_factor!r}")
        value = self.original_max_seq_len
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"rope_scaling.original_max_seq_len={value!r} must be an int >= 1")

    def scale(self, inv_freq: Any) -> list[float]:
        r"""The scaled frequencies :math:`\theta'_i` of the frequencies :math:`\theta_i`.

        Examples
        --------
        >>> RopeScaling(2.0, 1.0, 4.0, 16).scale([10.0, 0.01])
        [10.0, 0.005]
        """
        f, lo, hi, t0 = (self.factor, self.low_freq_factor, self.high_freq_factor,
                         self.original_max_seq_len)
        out = []
        for theta in map(float, inv_freq):
            wavelength = 2 * math.pi / theta  # Lambda_i
            if wavelength < t0 / hi:  # fast: kept
                out.append(theta)
            elif wavelength > t0 / lo:  # slow: stretched
                out.append(theta / f)
            else:  # between: blended, weight varpi_i
                varpi = (t0 / wavelength - lo) / (hi - lo)
                out.append((1 - varpi) * theta / f + varpi * theta)
        return out


@dataclass(frozen=True)
class ModelConfig:
    r"""Every architectural switch of the decoder-only transformer.

    Parameters
    ----------
    vocab_size : int
        Number of token ids, ``V``.
    d_model : int
        Residual-stream width, ``C``.
    n_layers : int
        Number of transformer blocks, ``L``.
    n_heads : int
        Attention heads per block, ``H``; must divide ``d_model``.
    d_ff : int
        Feed-forward hidden width, ``F``.
    max_seq_len : int
        Longest accepted sequence.
    norm : {"layernorm", "rmsnorm", "none"}
        Normalisation layer.
    residual : {"pre", "post", "sandwich"}
        Where the normalisation sits relative to each residual branch.
    activation : {"relu", "gelu", "gelu_tanh", "swish", "swiglu"}
        Feed-forward non-linearity (``"swiglu"`` adds a gate projection).
    position : {"sinusoidal", "learned", "rope", "alibi", "none"}
        How the model learns where a token is.
    bias : bool
        Whether linear maps and LayerNorm carry additive biases.
    tie_embeddings : bool
        Whether the output head is the transposed token embedding.
    dropout : float
        Dropout probability in training mode, in ``[0, 1)``.
    norm_eps : float
        Stabiliser inside the norm's square root, ``> 0``.
    rope_theta : float
        Base :math:`\Theta` of the RoPE frequencies, ``> 1``.
    rope_scaling : RopeScaling, dict or None
        Llama 3.1's frequency scaling (a dict of :class:`RopeScaling`'s fields is converted).
        Like ``rope_theta``, it is used only with ``position="rope"``. ``None``, the default,
        leaves the frequencies alone.
    init_std : float
        Standard deviation of the normal initial weights, ``> 0``.
    n_kv_heads : int or None
        Key/value heads ``G`` (grouped-query attention); a positive divisor of ``n_heads``.
        ``None``, the default, means ``n_heads`` (plain multi-head attention); a value equal to
        ``n_heads`` is stored as ``None``, so that two configs of one architecture compare equal
        and a config saved before this field existed loads unchanged. :attr:`kv_heads` is the
        number either way.

    Raises
    ------
    ValueError
        Naming the field, the value received and what is allowed.

    Examples
    --------
    >>> cfg = ModelConfig(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=4)
    >>> (cfg.d_head, cfg.norm, cfg.residual, cfg.activation, cfg.position)
    (4, 'layernorm', 'pre', 'gelu', 'learned')
    >>> ModelConfig(vocab_size=10, d_model=10, n_layers=1, n_heads=3, d_ff=16, max_seq_len=4)
    Traceback (most recent call last):
    ...
    ValueError: d_model=10 is not divisible by n_heads=3; n_heads must divide d_model (one of ...)
    >>> cfg.replace(n_heads=4, d_model=16, n_kv_heads=3)
    Traceback (most recent call last):
    ...
    ValueError: n_kv_heads=3 does not divide n_heads=4; allowed: None (= n_heads) or one of 1, 2, 4
    >>> cfg.replace(n_kv_heads=2).n_kv_heads is None, cfg.replace(n_kv_heads=1).kv_heads
    (True, 1)
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_seq_len: int
    norm: str = "layernorm"
    residual: str = "pre"
    activation: str = "gelu"
    position: str = "learned"
    bias: bool = True
    tie_embeddings: bool = False
    dropout: float = 0.0
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    init_std: float = 0.02
    n_kv_heads: int | None = None
    rope_scaling: RopeScaling | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"{name}={value!r} must be a positive int, got {type(value).__name__}"
                )
            if value < 1:
                raise ValueError(f"{name}={value} must be a positive int (>= 1)")
        if self.d_model % self.n_heads:
            divisors = ", ".join(map(str, _divisors(self.d_model)))
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                f"n_heads must divide d_model (one of {divisors})"
            )
        if self.n_kv_heads is not None:
            divisors = ", ".join(map(str, _divisors(self.n_heads)))
            allowed = f"allowed: None (= n_heads) or one of {divisors}"
            value = self.n_kv_heads
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"n_kv_heads={value!r} must be an int or None, got {type(value).__name__}; "
                    f"{allowed}"
                )
            if value < 1 or self.n_heads % value:
                raise ValueError(
                    f"n_kv_heads={value} does not divide n_heads={self.n_heads}; {allowed}"
                )
            if value == self.n_heads:
                object.__setattr__(self, "n_kv_heads", None)  # one spelling of multi-head attention
        for name, allowed in (
            ("norm", NORMS),
            ("residual", RESIDUALS),
            ("activation", ACTIVATIONS),
            ("position", POSITIONS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"{name}={value!r} is not supported; allowed: {', '.join(map(repr, allowed))}"
                )
        for name in ("bias", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        for name in ("dropout", "norm_eps", "rope_theta", "init_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name}={value!r} must be a number")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1)")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps={self.norm_eps} must be > 0")
        if not self.rope_theta > 1:
            raise ValueError(f"rope_theta={self.rope_theta} must be > 1")
        if not self.init_std > 0:
            raise ValueError(f"init_std={self.init_std} must be > 0")
        if isinstance(self.rope_scaling, dict):
            try:
                object.__setattr__(self, "rope_scaling", RopeScaling(**self.rope_scaling))
            except TypeError as exc:
                raise ValueError(f"rope_scaling={self.rope_scaling!r}: {exc}; its fields are "
                                 "factor, low_freq_factor, high_freq_factor, "
                                 "original_max_seq_len") from None
        if self.rope_scaling is not None:
            if not isinstance(self.rope_scaling, RopeScaling):
                raise ValueError(f"rope_scaling={self.rope_scaling!r} must be None, a "
                                 "RopeScaling or a dict of its fields")
        if self.position == "rope" and self.d_head % 2:
            raise ValueError(
                f"position='rope' needs an even head width, but d_model/n_heads = "
                f"{self.d_model}/{self.n_heads} = {self.d_head}; choose n_heads so that "
                f"d_model/n_heads is even"
            )
        if self.residual == "sandwich" and self.norm == "none":
            raise ValueError(
                "residual='sandwich' places extra norms around each sublayer, so it needs "
                "norm='layernorm' or norm='rmsnorm', got norm='none'"
            )

    # ------------------------------------------------------------------ derived sizes
    @property
    def d_head(self) -> int:
        """Width of one attention head, ``D = d_model // n_heads``.

        Examples
        --------
        >>> cfg = ModelConfig(vocab_size=5, d_model=12, n_layers=1, n_heads=3, d_ff=8,
        ...                   max_seq_len=4)
        >>> cfg.d_head
        4
        """
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads, ``G``: ``n_kv_heads``, or ``n_heads`` when that is None.

        Examples
        --------
        >>> cfg = ModelConfig(vocab_size=5, d_model=16, n_layers=1, n_heads=4, d_ff=8,
        ...                   max_seq_len=4)
        >>> cfg.kv_heads, cfg.replace(n_kv_heads=2).kv_heads
        (4, 2)
        """
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def gated(self) -> bool:
        """Whether the feed-forward sublayer has a gate projection (SwiGLU).

        Examples
        --------
        >>> ModelConfig(5, 8, 1, 2, 8, 4, activation="swiglu").gated
        True
        """
        return self.activation == "swiglu"

    @property
    def has_final_norm(self) -> bool:
        """Whether a norm follows the last block (pre-LN and sandwich layouts).

        In the post-LN layout the last block already ends in a norm, so none is added.

        Examples
        --------
        >>> ModelConfig(5, 8, 1, 2, 8, 4, residual="post").has_final_norm
        False
        """
        return self.norm != "none" and self.residual in ("pre", "sandwich")

    # ------------------------------------------------------------------ conversions
    def replace(self, **changes: Any) -> ModelConfig:
        """Return a copy with some fields changed (validated again).

        Examples
        --------
        >>> cfg = ModelConfig(5, 8, 1, 2, 8, 4)
        >>> cfg.replace(n_layers=3).n_layers
        3
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (JSON-serialisable).

        Examples
        --------
        >>> ModelConfig(5, 8, 1, 2, 8, 4).to_dict()["d_model"]
        8
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from a dict, rejecting unknown keys by name.

        Examples
        --------
        >>> ModelConfig.from_dict({"vocab_size": 5, "d_model": 8, "n_layers": 1, "n_heads": 2,
        ...                        "d_ff": 8, "max_seq_len": 4}).n_heads
        2
        >>> ModelConfig.from_dict({"vocab_size": 5, "width": 8})
        Traceback (most recent call last):
        ...
        ValueError: unknown ModelConfig field(s): 'width'; known fields: vocab_size, d_model, ...
        """
        if not isinstance(data, dict):
            raise ValueError(f"a ModelConfig needs a dict of fields, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s): {', '.join(map(repr, unknown))}; "
                f"known fields: {', '.join(known)}"
            )
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.name not in data
        ]
        if missing:
            raise ValueError(f"ModelConfig is missing required field(s): {', '.join(missing)}")
        return cls(**data)

    def to_json(self) -> str:
        """Serialise to a JSON string (sorted keys).

        Examples
        --------
        >>> cfg = ModelConfig(5, 8, 1, 2, 8, 4)
        >>> ModelConfig.from_json(cfg.to_json()) == cfg
        True
        """
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Parse a config from a JSON string.

        Examples
        --------
        >>> ModelConfig.from_json('{"vocab_size": 5, "d_model": 8, "n_layers": 1, '
        ...                       '"n_heads": 2, "d_ff": 8, "max_seq_len": 4}').vocab_size
        5
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def gpt2_config(
    vocab_size: int = 50257,
    d_model: int = 768,
    n_layers: int = 12,
    n_heads: int = 12,
    max_seq_len: int = 1024,
    **overrides: Any,
) -> ModelConfig:
    r"""A GPT-2 style configuration (defaults: GPT-2 small, 124M parameters).

    Conventions: learned positions, pre-LN LayerNorm with bias and ``eps = 1e-5``, a final
    LayerNorm, GELU (tanh approximation), ``d_ff = 4 C``, biases everywhere, LM head tied to the
    token embedding, dropout 0.1, initial std 0.02. GPT-2's fused ``c_attn`` weight of shape
    ``(C, 3C)`` splits column-wise into our ``w_q``, ``w_k``, ``w_v``; its ``c_proj`` is ``w_o``;
    ``mlp.c_fc`` / ``mlp.c_proj`` are ``mlp.w_up`` / ``mlp.w_down``; its Conv1D weights are
    already stored ``(in, out)`` like ours.

    Examples
    --------
    >>> cfg = gpt2_config(vocab_size=100, d_model=32, n_layers=2, n_heads=4, max_seq_len=16)
    >>> (cfg.norm, cfg.activation, cfg.position, cfg.tie_embeddings, cfg.d_ff)
    ('layernorm', 'gelu_tanh', 'learned', True, 128)
    """
    fields = dict(
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ff=4 * d_model,
        max_seq_len=max_seq_len,
        norm="layernorm",
        residual="pre",
        activation="gelu_tanh",
        position="learned",
        bias=True,
        tie_embeddings=True,
        dropout=0.1,
        norm_eps=1e-5,
        init_std=0.02,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def llama_config(
    vocab_size: int = 32000,
    d_model: int = 4096,
    n_layers: int = 32,
    n_heads: int = 32,
    max_seq_len: int = 2048,
    d_ff: int | None = None,
    n_kv_heads: int | None = None,
    **overrides: Any,
) -> ModelConfig:
    r"""A Llama style configuration (defaults: Llama-7B's shape).

    Conventions: RMSNorm (``eps = 1e-5``) before each sublayer and at the end; SwiGLU feed-forward
    with gate, up and down projections; RoPE with ``rope_theta = 10000`` in the rotate-half layout
    (dimension ``i`` of a head rotates with dimension ``i + D/2``); no biases; untied LM head; no
    dropout. When ``d_ff`` is not given it follows Llama's rule: ``2/3 * 4C`` rounded up to a
    multiple of 256 (11008 for ``C = 4096``), or of 8 for small widths. ``n_kv_heads`` gives
    grouped-query attention (Llama 2 70B and Llama 3 use 8); the default, None, is one key/value
    head per query head, as in Llama-7B.

    Llama's ``nn.Linear`` weights are stored ``(out, in)``; transpose them into our ``(in, out)``.
    Names map as ``q_proj, k_proj, v_proj, o_proj -> w_q, w_k, w_v, w_o`` and
    ``gate_proj, up_proj, down_proj -> w_gate, w_up, w_down``.

    Examples
    --------
    >>> llama_config().d_ff
    11008
    >>> cfg = llama_config(vocab_size=100, d_model=64, n_layers=2, n_heads=4, max_seq_len=32)
    >>> (cfg.norm, cfg.activation, cfg.position, cfg.bias, cfg.tie_embeddings, cfg.d_ff)
    ('rmsnorm', 'swiglu', 'rope', False, False, 176)
    >>> llama_config(d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8).kv_heads  # Llama 2 70B
    8
    """
    if d_ff is None:
        hidden = int(2 * 4 * d_model / 3)
        multiple = 256 if d_model >= 1024 else 8
        d_ff = multiple * ((hidden + multiple - 1) // multiple)
    fields = dict(
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_ff=d_ff,
        max_seq_len=max_seq_len,
        norm="rmsnorm",
        residual="pre",
        activation="swiglu",
        position="rope",
        bias=False,
        tie_embeddings=False,
        dropout=0.0,
        norm_eps=1e-5,
        rope_theta=10000.0,
        init_std=0.02,
    )
    fields.update(overrides)
    return ModelConfig(**fields)
