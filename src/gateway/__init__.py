"""tensorgate's gateway: settings, protocol, codec, model registry, inference and the HTTP API."""
