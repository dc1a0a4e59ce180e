"""The gRPC wire contract: our .proto files and their generated, checked-in stubs.

The ``*_pb2.py`` modules and their ``.pyi`` come from scripts/generate_grpc_stubs.py
(``--check`` says whether they are current); their descriptors live in ``pool.POOL``.
"""
