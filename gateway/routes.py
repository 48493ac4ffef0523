"""The HTTP route table, read from the google.api.http annotations in the protos.

Nothing here names a route by hand: adding an annotated RPC to a proto adds its route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from autoloader.control.v1 import control_pb2
from autoloader.tracker.v1 import tracker_pb2

# Services whose annotated RPCs the gateway serves, and the backend that hosts each.
SERVED_SERVICES: dict[str, ServiceDescriptor] = {
    "control": control_pb2.DESCRIPTOR.services_by_name["ControlService"],
    "tracker": tracker_pb2.DESCRIPTOR.services_by_name["TrackerService"],
}

# HTTP status of a success, where 200 would undersell what happened.
SUCCESS_STATUS = {"CreateIngestion": 201, "RunIngestion": 202}

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


@dataclass(frozen=True)
class Route:
    http_method: str
    path: str
    backend: str
    method: MethodDescriptor
    body: str
    response_body: str

    @property
    def rpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def path_variables(self) -> list[str]:
        return _VARIABLE.findall(self.path)

    @property
    def success_status(self) -> int:
        return SUCCESS_STATUS.get(self.method.name, 200)


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def build_routes(services: dict[str, ServiceDescriptor] = SERVED_SERVICES) -> list[Route]:
    routes = []
    for backend, service in services.items():
        for method in service.methods:
            rule = http_rule(method)
            if rule is None:
                continue  # internal RPC, gRPC only
            verb = rule.WhichOneof("pattern")
            if verb not in ("get", "post", "put", "patch", "delete"):
                raise ValueError(f"{method.full_name}: unsupported HTTP rule {verb}")
            routes.append(
                Route(
                    http_method=verb.upper(),
                    path=getattr(rule, verb),
                    backend=backend,
                    method=method,
                    body=rule.body,
                    response_body=rule.response_body,
                )
            )
    return routes
