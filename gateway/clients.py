"""gRPC channels to the backends, and a generic unary call by method path."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from gateway.routes import Route
from services.shared.tls import ChannelFactory


class Backends:
    def __init__(self, addresses: dict[str, str], open_channel: ChannelFactory | None = None) -> None:
        """open_channel makes a channel to an address (services.shared.tls.channel_factory for TLS);
        plaintext channels without it."""
        self._addresses = {name: address for name, address in addresses.items() if address}
        self._open_channel: ChannelFactory = open_channel or grpc.aio.insecure_channel
        self._channels: dict[str, grpc.aio.Channel] = {}

    def open(self) -> None:
        """Create the channels; must run inside the event loop that will use them."""
        self._channels = {name: self._open_channel(address) for name, address in self._addresses.items()}

    def channel(self, name: str) -> grpc.aio.Channel:
        return self._channels[name]

    @property
    def names(self) -> list[str]:
        return list(self._addresses)

    async def call(
        self, route: Route, request: Message, metadata: Sequence[tuple[str, str]], timeout: float = 60.0
    ) -> Message:
        response_class = message_factory.GetMessageClass(route.method.output_type)
        rpc = self._channels[route.backend].unary_unary(
            route.rpc_path,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        response: Message = await rpc(request, metadata=metadata, timeout=timeout)
        return response

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
