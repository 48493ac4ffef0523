"""Where the installed package keeps the API's .proto files, for generating clients in other languages."""

from __future__ import annotations

from pathlib import Path


def proto_path() -> Path:
    """The directory holding autoloader/{control,tracker,executor}/v1/*.proto: pass it to protoc as -I.

    The files are copied from the repository's protos/ when the package is built (scripts/generate_stubs.py).
    """
    import autoloader

    path = Path(next(iter(autoloader.__path__))) / "protos"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing: reinstall the package (the build copies the protos there)")
    return path


def proto_include_paths() -> list[Path]:
    """Every -I directory protoc needs for the API's protos: proto_path() and google/api/*.proto (which ship
    with googleapis-common-protos). protoc's own include directory supplies google/protobuf/*.proto."""
    import google.api

    google_api = Path(next(iter(google.api.__path__)))
    return [proto_path(), google_api.parent.parent]
