"""The JVM jars Spark needs beyond the pyspark wheel: resolved once with Maven into a cache directory.

jvm/pom.xml is the only place that names these jars and their versions. Maven copies them into the cache
on first start; later starts find every jar there and need neither Maven nor the network. Without Maven,
`ensure_jars` returns [] and the caller hands `ivy_packages()` to Spark's own Ivy resolution instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.shared.config import default_jar_cache

POM = Path(__file__).resolve().parents[2] / "jvm" / "pom.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_PROPERTY = re.compile(r"\$\{([^}]+)\}")
# A cold resolution downloads ~330 MB (mostly aws-java-sdk-bundle); leave room for a slow link.
MVN_TIMEOUT_S = 900

log = structlog.get_logger(__name__)


class JarResolutionError(RuntimeError):
    """Maven could not resolve jvm/pom.xml; the message carries Maven's own output."""


@dataclass(frozen=True)
class Artifact:
    group_id: str
    artifact_id: str
    version: str
    # (groupId, artifactId) pairs that pyspark already ships: Ivy must not fetch them again.
    exclusions: tuple[tuple[str, str], ...] = ()

    @property
    def coordinate(self) -> str:
        return f"{self.group_id}:{self.artifact_id}:{self.version}"

    @property
    def jar_name(self) -> str:
        # The file name dependency:copy-dependencies gives a plain jar (no classifier, version kept).
        return f"{self.artifact_id}-{self.version}.jar"


def _text(element: ET.Element, tag: str, properties: dict[str, str]) -> str:
    child = element.find(f"m:{tag}", _NS)
    if child is None or not child.text:
        raise ValueError(f"pom element <{element.tag}> has no <{tag}>")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in properties:
            raise ValueError(f"pom property ${{{name}}} is not defined in <properties>")
        return properties[name]

    return _PROPERTY.sub(substitute, child.text.strip())


def pom_artifacts(pom: Path = POM) -> list[Artifact]:
    """The direct dependencies of the pom, with ${property} references resolved."""
    root = ET.parse(pom).getroot()
    props_element = root.find("m:properties", _NS)
    properties = {
        child.tag.split("}", 1)[1]: (child.text or "").strip()
        for child in (props_element if props_element is not None else [])
        if isinstance(child.tag, str)  # skips XML comments
    }
    artifacts = []
    for dep in root.findall("m:dependencies/m:dependency", _NS):
        exclusions = tuple(
            (_text(ex, "groupId", properties), _text(ex, "artifactId", properties))
            for ex in dep.findall("m:exclusions/m:exclusion", _NS)
        )
        artifacts.append(
            Artifact(
                group_id=_text(dep, "groupId", properties),
                artifact_id=_text(dep, "artifactId", properties),
                version=_text(dep, "version", properties),
                exclusions=exclusions,
            )
        )
    return artifacts


def ivy_packages(pom: Path = POM) -> str:
    """The same jars as Maven coordinates for `spark.jars.packages`."""
    return ",".join(a.coordinate for a in pom_artifacts(pom))


def ivy_excludes(pom: Path = POM) -> str:
    """`spark.jars.excludes`: the transitive jars the pom excludes because pyspark already ships them."""
    artifacts = pom_artifacts(pom)
    direct = {(a.group_id, a.artifact_id) for a in artifacts}
    # Ivy applies excludes to the whole resolution, so a jar the pom also names directly must stay in.
    excluded = dict.fromkeys(f"{g}:{a}" for art in artifacts for g, a in art.exclusions if (g, a) not in direct)
    return ",".join(excluded)


def ensure_jars(cache_dir: Path, pom: Path = POM) -> list[Path]:
    """Paths of every jar the pom names, resolving with Maven only when the cache lacks one.

    Returns [] when the cache is incomplete and `mvn` is not on PATH: the caller then uses Ivy.
    """
    artifacts = pom_artifacts(pom)
    jars = [cache_dir / a.jar_name for a in artifacts]
    if all(jar.is_file() for jar in jars):
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        log.warning("mvn not on PATH; Spark will resolve its jars with Ivy", cache_dir=str(cache_dir))
        return []
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Resolve into a private directory, then rename each jar into place: an executor starting at the same
    # time never sees a half-copied jar, and a killed resolution leaves no partial file under its final name.
    with tempfile.TemporaryDirectory(prefix=".resolve-", dir=cache_dir) as staging:
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DexcludeTransitive=true",  # direct dependencies only: everything else is in pyspark/jars
            f"-DoutputDirectory={staging}",
        ]
        log.info("resolving Spark jars with Maven", cache_dir=str(cache_dir))
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=MVN_TIMEOUT_S)
        except subprocess.CalledProcessError as e:
            output = (e.stdout or "") + (e.stderr or "")
            raise JarResolutionError(f"mvn failed ({e.returncode}) resolving {pom}:\n{output[-4000:]}") from e
        except subprocess.TimeoutExpired as e:
            raise JarResolutionError(f"mvn did not finish within {MVN_TIMEOUT_S} s resolving {pom}") from e
        for artifact, jar in zip(artifacts, jars, strict=True):
            resolved = Path(staging) / artifact.jar_name
            if not resolved.is_file():
                raise JarResolutionError(f"mvn did not produce {artifact.jar_name} for {artifact.coordinate}")
            resolved.replace(jar)
    return jars


if __name__ == "__main__":
    # `python -m services.executor.jars`: the install step resolves the jars once, so later starts are offline.
    for path in ensure_jars(default_jar_cache()):
        print(path)
