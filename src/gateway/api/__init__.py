"""The HTTP layer: the only part of tensorgate that knows FastAPI and Starlette."""
