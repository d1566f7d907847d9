"""The layer every fityard service shares: configuration, object storage, the
NATS bus, telemetry and gRPC error helpers. Services import from here instead of
re-implementing any of it."""
