r"""Several processes, one update: the batch shared out between ``torchrun``'s processes and cut
into micro-batches so that the loss and the gradient stay those of the whole batch.

The update of one large batch
-----------------------------
The loss of an update is the mean cross-entropy over the :math:`N` targets that count in its
batch of :math:`B` rows (:mod:`literate_tx.numpy_backend.loss`; ``ignore_index`` targets do not
count):

.. math::

    \mathcal{L} = \frac{1}{N} \sum_{i=1}^{N} \ell_i.                                   \tag{1}

Cut the rows into :math:`P` parts, part :math:`p` holding :math:`N_p` counted targets and having
the mean loss :math:`\mathcal{L}_p`. Then

.. math::

    \mathcal{L} = \sum_{p=1}^{P} \frac{N_p}{N} \mathcal{L}_p, \qquad
    \nabla \mathcal{L} = \sum_{p=1}^{P} \frac{N_p}{N} \nabla \mathcal{L}_p,            \tag{2}

the second because the gradient is linear. The weights are the parts' shares of the counted
targets, not :math:`1/P`: in the digits task only the answer counts and answers differ in
length, so the mean of the parts' means would be another loss, and another gradient.

Processes and micro-batches
---------------------------
With :math:`W` processes and ``grad_accum`` :math:`= M` micro-batches per process, the
:math:`P = W M` parts are consecutive runs of rows (:func:`part_rows`; sizes differ by at most
one): process :math:`r` takes parts :math:`rM, \dots, rM + M - 1`, so the processes see
disjoint rows whose union is the batch. Each process sums the gradients of its micro-batches
locally (``no_sync``: no communication until the last one) and
:class:`~torch.nn.parallel.DistributedDataParallel` then *averages* the :math:`W` sums, that
is, divides by :math:`W`. A process therefore back-propagates, for its part :math:`p`,

.. math::

    \mathcal{L}'_p = W \, \frac{N_p}{N} \mathcal{L}_p
                   = \frac{W}{N} \sum_{i \in p} \ell_i,                                 \tag{3}

and the average over processes of the summed gradients of eq. (3) is eq. (2) exactly.

The batch sampler, and resuming
-------------------------------
Every process draws the *whole* batch from its own copy of the run's data generator (the same
seed everywhere) and keeps its rows. This is the distributed sampler: it needs no
communication, each process knows :math:`N` (the counted targets of the whole batch) for
eq. (3), and the generator's state is the same in every process, so the ``last.npz`` written by
process 0 alone resumes every process exactly, and a run may even resume on another number of
processes (the batches, hence the updates, are the same up to round-off).

Dropout under several processes draws its masks from a generator seeded by the run's seed, the
update, the process and the micro-batch (:func:`dropout_seed`): different in every process,
and nothing to save for an exact resume.

Launching
---------
``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in each; :func:`detect` reads them and :func:`init` joins
the process group (``nccl`` on CUDA, ``gloo`` on the CPU) through ``env://``, or through the
URL in ``LITERATE_TX_DIST_INIT`` when set (e.g. ``file:///shared/folder/store``, which opens
no port). See ``docs/scaling.md`` for the commands.

Examples
--------
Ten rows, two processes, two micro-batches each: four consecutive runs of rows, process 1
gets the last two.

>>> [(s.start, s.stop) for s in part_rows(10, rank=1, world_size=2, grad_accum=2)]
[(5, 7), (7, 10)]
>>> detect({}).world_size
1
"""

from __future__ import annotations

import atexit
import dataclasses
import os
from collections.abc import Mapping

import numpy as np

__all__ = [
    "DistInfo",
    "detect",
    "dropout_seed",
    "init",
    "micro_batches",
    "part_rows",
    "resolve_device",
    "teardown",
]

#: Environment variable with an ``init_method`` URL that replaces ``env://``.
INIT_METHOD_ENV = "LITERATE_TX_DIST_INIT"

_STATE = {"initialized_here": False}


@dataclasses.dataclass(frozen=True)
class DistInfo:
    r"""Where this process stands in the run: its rank among ``world_size`` processes.

    Attributes
    ----------
    rank : int
        0 ... ``world_size - 1``; process 0 alone writes files and prints.
    world_size : int
        Number of processes (1: no process group).
    local_rank : int
        Rank on this machine (picks the GPU, ``cuda:LOCAL_RANK``).
    backend : str or None
        ``"gloo"`` or ``"nccl"`` once :func:`init` joined the group; ``None`` alone.

    Examples
    --------
    >>> DistInfo().is_main, DistInfo(rank=1, world_size=2).is_main
    (True, False)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        r"""True for process 0, the one that writes checkpoints and metrics.

        Examples
        --------
        >>> DistInfo(rank=0, world_size=4).is_main
        True
        """
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        r"""True when there is more than one process.

        Examples
        --------
        >>> DistInfo().distributed
        False
        """
        return self.world_size > 1


def _env_int(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={text!r} is not an integer; torchrun sets it to one"
        ) from None
    if value < low:
        raise ValueError(f"environment variable {name}={value} is not allowed; it must be >= {low}")
    return value


def detect(env: Mapping[str, str] | None = None) -> DistInfo:
    r"""This process's rank and the number of processes, from ``torchrun``'s variables.

    Parameters
    ----------
    env : mapping, optional
        The environment (default ``os.environ``): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.
        Without ``WORLD_SIZE`` (a plain ``python`` run) there is one process.

    Raises
    ------
    ValueError
        For a variable that is not an integer, or ``RANK >= WORLD_SIZE``.

    Examples
    --------
    >>> detect({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    DistInfo(rank=3, world_size=4, local_rank=1, backend=None)
    >>> detect({"RANK": "4", "WORLD_SIZE": "4"})
    Traceback (most recent call last):
    ...
    ValueError: environment variable RANK=4 is not allowed with WORLD_SIZE=4; it must be < 4
    """
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1, 1)
    rank = _env_int(env, "RANK", 0, 0)
    local = _env_int(env, "LOCAL_RANK", rank, 0)
    if rank >= world:
        raise ValueError(
            f"environment variable RANK={rank} is not allowed with WORLD_SIZE={world}; "
            f"it must be < {world}"
        )
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def resolve_device(device: str, backend: str, info: DistInfo) -> tuple[str, str]:
    r"""The device this process trains on, and how it was chosen (for the start report).

    ``"auto"`` picks CUDA when available (``cuda:LOCAL_RANK`` under several processes), then
    Apple's MPS, else the CPU. ``"cuda"`` under several processes means ``cuda:LOCAL_RANK``.
    The numpy and python backends always run on the CPU.

    Raises
    ------
    ValueError
        For MPS with several processes (no PyTorch process-group backend runs on MPS), or a
        numbered CUDA device (``"cuda:1"``) with several processes, which would all share it.

    Examples
    --------
    >>> resolve_device("auto", "numpy", DistInfo())
    ('cpu', 'cpu (numpy backend)')
    >>> resolve_device("cuda", "torch", DistInfo(rank=1, world_size=2, local_rank=1))[0]
    'cuda:1'
    """
    if backend != "torch":
        return "cpu", f"cpu ({backend} backend)"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            chosen = f"cuda:{info.local_rank}" if info.distributed else "cuda"
            how = f"{chosen} (auto: {torch.cuda.get_device_name(0)})"
        elif _mps_available(torch):
            chosen, how = "mps", "mps (auto: Apple GPU, no CUDA)"
        else:
            chosen, how = "cpu", "cpu (auto: no CUDA or MPS device found)"
    else:
        if info.distributed and device.startswith("cuda:"):
            raise ValueError(
                f"device={device!r} is not allowed with {info.world_size} processes: each "
                "process takes its own GPU, cuda:LOCAL_RANK; use device='cuda' or 'auto'"
            )
        chosen = f"cuda:{info.local_rank}" if device == "cuda" and info.distributed else device
        how = chosen
    if info.distributed and chosen.startswith("mps"):
        raise ValueError(
            f"device={chosen!r} is not allowed with {info.world_size} processes: PyTorch has "
            "no process-group backend for MPS; use device='cpu' under torchrun"
        )
    return chosen, how


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def init(info: DistInfo, device: str) -> DistInfo:
    r"""Join the process group of ``torchrun`` (once per process) and say with which backend.

    Alone (``world_size == 1``) this does nothing. Otherwise it calls
    :func:`torch.distributed.init_process_group` with ``nccl`` for a CUDA device and ``gloo``
    otherwise, through ``env://`` (``MASTER_ADDR``, ``MASTER_PORT``) or the URL in the
    ``LITERATE_TX_DIST_INIT`` environment variable; a group that already exists (made by
    the caller) is used as it is. :func:`teardown` (also run at exit) leaves the group.

    Examples
    --------
    >>> init(DistInfo(), "cpu").backend is None
    True
    """
    if not info.distributed:
        return info
    import torch.distributed as dist

    if not dist.is_available():  # pragma: no cover - every PyTorch wheel has it
        raise RuntimeError("this PyTorch was built without torch.distributed")
    if device.startswith("cuda"):
        import torch

        # NCCL's communicators use the current device: one GPU per process
        torch.cuda.set_device(torch.device(device))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        method = os.environ.get(INIT_METHOD_ENV) or "env://"
        dist.init_process_group(backend, init_method=method, rank=info.rank,
                                world_size=info.world_size)
        if not _STATE["initialized_here"]:
            atexit.register(teardown)
        _STATE["initialized_here"] = True
    if dist.get_world_size() != info.world_size or dist.get_rank() != info.rank:
        raise ValueError(
            f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}, but "
            f"RANK={info.rank} and WORLD_SIZE={info.world_size}; start the processes with "
            "torchrun"
        )
    return dataclasses.replace(info, backend=str(dist.get_backend()))


def teardown() -> None:
    r"""Leave the process group if :func:`init` made it (safe to call more than once).

    Examples
    --------
    >>> teardown()
    """
    if not _STATE["initialized_here"]:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    _STATE["initialized_here"] = False


def part_rows(n_rows: int, rank: int, world_size: int, grad_accum: int) -> list[slice]:
    r"""The rows of process ``rank``'s micro-batches: consecutive parts of ``range(n_rows)``.

    Part :math:`k` of :math:`P` = ``world_size * grad_accum`` holds rows
    :math:`\lfloor kB/P \rfloor \dots \lfloor (k+1)B/P \rfloor - 1`; the process takes
    ``grad_accum`` consecutive parts. Over all ranks the parts are disjoint and cover the rows
    in order.

    Raises
    ------
    ValueError
        When a part would be empty (``n_rows < world_size * grad_accum``).

    Examples
    --------
    >>> [(s.start, s.stop) for s in part_rows(7, rank=0, world_size=1, grad_accum=3)]
    [(0, 2), (2, 4), (4, 7)]
    >>> part_rows(3, rank=0, world_size=2, grad_accum=2)
    Traceback (most recent call last):
    ...
    ValueError: batch_size=3 is too small for 2 processes x grad_accum=2: every micro-batch
    needs a row, so batch_size must be >= 4
    """
    parts = world_size * grad_accum
    if n_rows < parts:
        raise ValueError(
            f"batch_size={n_rows} is too small for {world_size} processes x "
            f"grad_accum={grad_accum}: every micro-batch needs a row, so batch_size must be "
            f">= {parts}"
        )
    edges = [k * n_rows // parts for k in range(parts + 1)]
    first = rank * grad_accum
    return [slice(edges[k], edges[k + 1]) for k in range(first, first + grad_accum)]


def micro_batches(x: np.ndarray, y: np.ndarray, info: DistInfo, grad_accum: int,
                  ignore_index: int = -100) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    r"""This process's micro-batches of the batch ``(x, y)``, and :math:`N` of eq. (1).

    Parameters
    ----------
    x, y : (B, T) int ndarray
        The whole batch of the update (every process draws the same one).
    info : DistInfo
    grad_accum : int
    ignore_index : int

    Returns
    -------
    parts : list of ((B_p, T), (B_p, T)) ndarray pairs
        ``grad_accum`` of them.
    n_counted : int
        Targets that count in the whole batch, the :math:`N` of eqs. (1)-(3).

    Examples
    --------
    >>> x = np.arange(8).reshape(4, 2)
    >>> y = np.array([[1, -100], [1, 1], [-100, -100], [1, -100]])
    >>> parts, n = micro_batches(x, y, DistInfo(rank=1, world_size=2), grad_accum=1)
    >>> parts[0][0].tolist(), n
    ([[4, 5], [6, 7]], 4)
    """
    rows = part_rows(len(x), info.rank, info.world_size, grad_accum)
    n_counted = int(np.count_nonzero(np.asarray(y) != ignore_index))
    return [(x[s], y[s]) for s in rows], n_counted  # (B_p, T) each


def dropout_seed(seed: int, step: int, rank: int, micro: int) -> int:
    r"""Seed of the dropout masks of one micro-batch of one process at one update.

    Examples
    --------
    >>> dropout_seed(0, 1, 0, 0) != dropout_seed(0, 1, 1, 0)
    True
    """
    state = np.random.SeedSequence([seed, step, rank, micro, 7]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])
