"""Generates the gRPC stubs from protos/ before setuptools collects the packages.

Everything else about the package lives in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))

from generate_stubs import generate  # noqa: E402

generate(ROOT)
setup()
