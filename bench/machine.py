"""What the benchmark ran on: printed with every result, since ratios only compare within one machine."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

import psutil


def _java_version() -> str:
    try:
        output = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return "not found"
    return output.splitlines()[0] if output else "unknown"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        if found:
            return found.group(1).strip()
    return platform.processor() or "unknown"


def describe() -> dict[str, str]:
    import pyspark  # only for its version

    pom = (Path(__file__).resolve().parents[1] / "jvm" / "pom.xml").read_text()
    iceberg = re.search(r"<iceberg.version>([^<]+)<", pom)
    return {
        "cpu": f"{os.cpu_count()} x {_cpu_model()}",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": _java_version(),
        "spark": pyspark.__version__,
        "iceberg": iceberg.group(1) if iceberg else "unknown",
    }
