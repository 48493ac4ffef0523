"""Generate the Python gRPC stubs from protos/ into the autoloader package, and copy the .proto files there.

Run by setup.py at install time (and by `make stubs`). The generated files are
never committed and never edited: protos/ is the single source. The copies in
autoloader/protos/ ship in the package for clients in other languages
(autoloader.client.proto_path()).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PACKAGE = "autoloader"
SHIPPED_PROTOS = Path(PACKAGE) / "protos"


def _google_api_include() -> str:
    # google/api/*.proto ship inside googleapis-common-protos; the generator finds them there.
    import google.api

    return str(Path(next(iter(google.api.__path__))).parent.parent)


def generate(root: Path) -> list[Path]:
    """Compile every proto under root/protos; return the generated module paths."""
    import grpc_tools
    from grpc_tools import protoc

    proto_root = root / "protos"
    out_root = root
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(proto_root.rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_root}")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{_google_api_include()}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    _ship_protos(proto_root, protos, out_root / SHIPPED_PROTOS)
    # Each generated directory becomes a regular package so setuptools and mypy find it.
    generated = []
    for proto in protos:
        rel = proto.relative_to(proto_root).with_suffix("")
        package_dir = out_root / rel.parent
        while package_dir != out_root / PACKAGE:
            (package_dir / "__init__.py").touch(exist_ok=True)
            package_dir = package_dir.parent
        generated.append(out_root / rel.parent / f"{rel.name}_pb2.py")
    return generated


def _ship_protos(proto_root: Path, protos: list[Path], target: Path) -> None:
    """Copy the .proto files into the package (as package data, not a Python package); stale copies go."""
    shutil.rmtree(target, ignore_errors=True)
    for proto in protos:
        copy = target / proto.relative_to(proto_root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(proto, copy)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    for path in generate(here):
        print(path.relative_to(here), file=sys.stderr)
