"""The local engine's commands reach `stepburst` through an entry point, never an import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stepburst import cli

pytestmark = pytest.mark.unit

WITHOUT_MOTO = """
import sys
sys.modules["moto"] = None  # as on a machine without the `local` extra
from stepburst import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_demo_and_local_up_are_offered_by_the_engine_package() -> None:
    help_text = cli.build_parser().format_help()

    assert "demo" in help_text
    assert "local" in help_text


def test_without_the_extra_local_up_says_how_to_install_it() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_MOTO, "local", "up", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == cli.EXIT_USAGE
    assert "pip install 'stepburst[local]'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_cli_loads_without_the_engine() -> None:
    probe = (
        "import sys, stepburst.cli\n"
        "stepburst.cli.build_parser()\n"
        "sys.exit(3 if {'moto', 'stepburst_local.engine'} & set(sys.modules) else 0)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )

    assert completed.returncode == 0, completed.stderr
