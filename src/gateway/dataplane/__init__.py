"""The data plane every transport calls: inference, metadata, readiness, repository index."""
