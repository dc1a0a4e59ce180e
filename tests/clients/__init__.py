"""Tests through real clients: a generated SDK and Swagger UI in a browser."""
