"""`python -m gateway serve`: the REST gateway, configured by AUTOLOADER_* variables."""

from __future__ import annotations

import argparse
import asyncio
import socket

import uvicorn

from gateway.app import create_app
from services.shared import logging as service_logging
from services.shared.config import GatewaySettings, load_settings
from services.shared.grpc_server import write_port_file
from services.shared.tls import TlsConfigError, TlsMaterial


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("command", choices=["serve"], help="serve HTTP until SIGTERM")
    parser.parse_args()
    settings = load_settings(GatewaySettings)
    try:
        tls = TlsMaterial.from_settings(settings)
        https = tls.uvicorn_options()
    except TlsConfigError as error:
        raise SystemExit(f"configuration error: {error}") from None
    service_logging.configure("gateway", settings.log_level)
    app = create_app(
        {
            "control": settings.control_address,
            "tracker": settings.tracker_address,
            "executor": settings.executor_address,
        },
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_second=settings.rate_limit_per_second,
        rate_limit_burst=settings.rate_limit_burst,
        open_channel=tls.open_channel,
    )
    # Bind first so port 0 works and the bound port can be reported before serving.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.http_host, settings.http_port))
    write_port_file(settings.port_file, sock.getsockname()[1])
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", **https)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
