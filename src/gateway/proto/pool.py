"""The private descriptor pool that tensorgate's generated gRPC stubs register into.

Our .proto files declare the same ``inference.*`` names as Triton's, under other file
names (gateway/proto/grpc_service.proto, not grpc_service.proto). Protobuf's
default pool refuses a second file that defines a name it already holds, so with both
in ``descriptor_pool.Default()`` importing tritonclient.grpc and our stubs in one
process fails with "duplicate symbol". scripts/generate_grpc_stubs.py rewrites the
generated modules to add their files here instead; nothing else should.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
