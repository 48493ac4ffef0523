"""The OpenAPI 3.1 document, generated from the same route table and proto descriptors the gateway serves."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.rpc import status_pb2

import autoloader
from gateway.routes import Route

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {"type": "object"},
}
_ERROR_STATUSES = {
    "400": "Invalid argument",
    "401": "Missing, malformed or revoked token",
    "403": "Not permitted",
    "404": "Not found",
    "409": "Conflict",
    "429": "Too many requests from this caller; retry after the Retry-After header's seconds",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder breaks recursion
            self.components[name] = {
                "type": "object",
                "additionalProperties": False,
                "properties": {f.name: self.field(f) for f in descriptor.fields},
            }
        return {"$ref": f"#/components/schemas/{name}"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value_field)}
        schema = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_SCALARS[field.type])


def _query_parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    bound = {*route.path_variables, route.body, "update_mask" if route.http_method == "PATCH" else ""}
    params = []
    for field in route.method.input_type.fields:
        if field.name in bound or field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        params.append({"name": field.name, "in": "query", "required": False, "schema": schemas.field(field)})
    return params


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    schemas = _Schemas()
    error_ref = schemas.ref(status_pb2.Status.DESCRIPTOR)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        output = route.method.output_type
        if route.response_body:
            response_schema = schemas.field(output.fields_by_name[route.response_body])
        else:
            response_schema = schemas.ref(output)
        operation: dict[str, Any] = {
            "operationId": route.method.name,
            "summary": route.method.name,
            "parameters": [
                {"name": v, "in": "path", "required": True, "schema": {"type": "string"}} for v in route.path_variables
            ]
            + _query_parameters(route, schemas),
            "responses": {
                str(route.success_status): {
                    "description": "Success",
                    "content": {"application/json": {"schema": response_schema}},
                },
                **{
                    code: {"description": text, "content": {"application/json": {"schema": error_ref}}}
                    for code, text in _ERROR_STATUSES.items()
                },
            },
            "security": [{"bearer": []}],
        }
        if route.body:
            body_schema = (
                schemas.ref(route.method.input_type)
                if route.body == "*"
                else schemas.field(route.method.input_type.fields_by_name[route.body])
            )
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        paths.setdefault(route.path, {})[route.http_method.lower()] = operation
    paths["/healthz"] = {
        "get": {
            "operationId": "Healthz",
            "summary": "Whether the gateway and its backends are serving (no token needed)",
            "security": [],
            "responses": {"200": {"description": "Serving"}, "503": {"description": "A backend is not serving"}},
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "Metrics",
            "summary": "The gateway's Prometheus metrics (no token needed)",
            "security": [],
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Autoloader API", "version": autoloader.__version__},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
