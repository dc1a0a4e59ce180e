"""The gRPC transport: the Open Inference Protocol with Triton's extensions."""
