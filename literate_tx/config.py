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
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NORMS",
    "RESIDUALS",
    "ACTIVATIONS",
    "POSITIONS",
    "ModelConfig",
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
