r"""The lab: an interactive app to train, watch, compare and look inside models.

``literate-tx lab`` starts a local web app (Streamlit, with Plotly charts; the optional extra
``pip install "literate-tx[lab]"``) on 127.0.0.1 and prints its address. Its pages:

Train
    Backend, task, recipe and every architecture switch and size (the tooltips are
    :class:`~literate_tx.training.TrainConfig`'s field descriptions); Start, Resume and Stop;
    live loss, validation, learning-rate and tokens/s curves. The training runs in a child
    process (:mod:`literate_tx.lab.jobs`) that writes the same run folder as
    ``literate-tx train``; Stop saves a resumable ``last.npz``.
Attention
    A checkpoint, a prompt, a layer and a head (or all of them); hover a cell for the query, the
    key and the weight. Digits models also get one map per operation on the same digits.
Internals
    Activation RMS per layer, histograms of any hooked activation, the residual stream norm and
    the gradient per layer.
Compare runs
    Up to four run folders: loss against step, wall time or FLOPs, validation loss and
    perplexity, the configurations side by side and a summary table.
Generate
    Temperature, top-k, top-p and seed; the text streams in as it is drawn, in any backend.
Trace
    The pure-Python backend's forward and backward pass, operation by operation, with shapes,
    statistics and values.
Benchmark
    :func:`literate_tx.bench.run_suite` at a chosen size, charted.

The logic lives in plain functions (:mod:`~literate_tx.lab.runs`, :mod:`~literate_tx.lab.jobs`,
:mod:`~literate_tx.lab.forms`, :mod:`~literate_tx.lab.models`), tested without a browser; the
pages (``literate_tx/lab/pages.py``, which imports Streamlit) only draw. The rest of the
package never imports Streamlit.

Nothing leaves the machine: the server listens on 127.0.0.1 only, usage statistics are off,
and the pages load nothing from the network (the ``lab`` nox session checks this in headless
Chromium).

Examples
--------
>>> cmd = server_command(8600, "runs")
>>> cmd[1:4], "--server.address=127.0.0.1" in cmd, "--browser.gatherUsageStats=false" in cmd
(['-m', 'streamlit', 'run'], True, True)
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["APP", "INSTALL_HINT", "free_port", "server_command", "launch"]

#: The Streamlit script.
APP = Path(__file__).with_name("app.py")
INSTALL_HINT = 'the lab needs Streamlit and Plotly: pip install "literate-tx[lab]"'


def _check_installed() -> None:
    missing = [m for m in ("streamlit", "plotly") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{INSTALL_HINT} ({', '.join(missing)} not installed)")


def free_port() -> int:
    r"""A TCP port on 127.0.0.1 that nothing listens on right now.

    Examples
    --------
    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(port: int, root: str | os.PathLike) -> list[str]:
    r"""The ``streamlit run`` command line of the lab: local only, headless, no statistics.

    ``root`` (the folder the pages look for runs in) travels in the environment as
    ``LTX_LAB_ROOT``; see :func:`launch`.

    Examples
    --------
    >>> "--server.port=8600" in server_command(8600, "runs")
    True
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address=127.0.0.1", f"--server.port={int(port)}",
        "--server.headless=true", "--browser.gatherUsageStats=false",
        "--client.showErrorDetails=none", "--client.toolbarMode=minimal",
        "--server.fileWatcherType=none", "--global.developmentMode=false",
        "--theme.base=light",
    ]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the lab's server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the lab's server did not answer at {url} within {timeout:.0f} s")


def launch(port: int | None = None, *, root: str | os.PathLike = "runs", browser: bool = True,
           ready_timeout: float = 60.0, stream=None) -> int:
    r"""Start the lab on ``http://127.0.0.1:PORT/``, print the address, serve until Ctrl-C.

    Parameters
    ----------
    port : int, optional
        Default: a free port.
    root : path
        Where the pages look for run folders (and where the Train page puts new runs).
    browser : bool
        Open the address in the default web browser once the server answers.
    ready_timeout : float
        Seconds to wait for the server to answer.
    stream : text stream, optional
        Where the address is printed (default standard output).

    Returns
    -------
    int
        The server's exit status (0 after Ctrl-C).

    Raises
    ------
    ImportError
        Without the ``lab`` extra, saying what to install.

    Examples
    --------
    >>> callable(launch)
    True
    """
    _check_installed()
    port = free_port() if port is None else int(port)
    if not 1 <= port <= 65535:
        raise ValueError(f"port={port} is not allowed; give a TCP port from 1 to 65535")
    stream = sys.stdout if stream is None else stream
    env = dict(os.environ, LTX_LAB_ROOT=str(Path(root).resolve()),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    proc = subprocess.Popen(server_command(port, root), env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_ready(url, proc, ready_timeout)
        print(f"literate_tx lab: {url}  (runs in {Path(root).resolve()}; Ctrl-C stops it)",
              file=stream, flush=True)
        if browser:
            import webbrowser

            webbrowser.open(url)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(30)
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
