"""The serving process: uvicorn options and HTTP protocol choice, worker processes, heap tuning."""
