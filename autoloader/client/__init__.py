"""The Autoloader SDK: typed clients of the API over gRPC (AutoloaderClient) and HTTP (AutoloaderHttpClient).

Methods return the generated proto messages (autoloader.control.v1.control_pb2, autoloader.tracker.v1.tracker_pb2);
list_* methods return iterators that fetch pages as they are read; errors are AutoloaderError subclasses.
"""

from autoloader.client.errors import (
    Aborted,
    AlreadyExists,
    AutoloaderError,
    Cancelled,
    ConfigurationError,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InternalError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    RunTimeout,
    TlsConfigError,
    Unauthenticated,
    Unavailable,
)
from autoloader.client.grpc_client import AutoloaderClient
from autoloader.client.http_client import AutoloaderHttpClient
from autoloader.client.protos import proto_include_paths, proto_path
from autoloader.client.tls import TlsOptions
from autoloader.client.waiting import TERMINAL_STATUSES

__all__ = [
    "TERMINAL_STATUSES",
    "Aborted",
    "AlreadyExists",
    "AutoloaderClient",
    "AutoloaderError",
    "AutoloaderHttpClient",
    "Cancelled",
    "ConfigurationError",
    "Conflict",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "RunTimeout",
    "TlsConfigError",
    "TlsOptions",
    "Unauthenticated",
    "Unavailable",
    "proto_include_paths",
    "proto_path",
]
