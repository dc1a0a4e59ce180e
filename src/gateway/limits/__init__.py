"""Request-rate and concurrency limits per caller or group, checked before a request is
admitted to a model's queue, by every transport (docs/limits.md)."""
