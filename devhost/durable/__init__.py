"""The Durable Task side of devhost: history, replay through the SDK, storage, the engine and
the management API. Facts it honours: ../shared/reference/durable-protocol.md."""
