"""Hypothesis profiles for the test suite, and the summary of what the property tests measured.

``ci`` is selected when the ``CI`` environment variable is set, ``dev`` otherwise; override with
``HYPOTHESIS_PROFILE=<name>``. Example counts are kept modest: CI runs on a 2-core machine.
"""

import os

from helpers import SUMMARY
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    print_blob=True,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=15,
    deadline=None,
    print_blob=True,
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


def pytest_terminal_summary(terminalreporter):
    """Print each section registered with ``helpers.summarise`` that has lines."""
    for heading, lines in SUMMARY.items():
        body = lines()
        if body:
            terminalreporter.section(heading, sep="-")
            for line in body:
                terminalreporter.write_line(line)
