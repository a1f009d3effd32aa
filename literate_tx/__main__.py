r"""``python -m literate_tx``: the same as the ``literate-tx`` command.

See :mod:`literate_tx.cli` for the subcommands (``train``, ``eval``, ``generate``,
``inspect``, ``info``).

Examples
--------
>>> from literate_tx.cli import main
>>> main(["info"])  # doctest: +ELLIPSIS
literate_tx ...
0
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
