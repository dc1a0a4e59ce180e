"""The one inference pipeline: the protocol and typed inference routes, answered beside FastAPI."""
