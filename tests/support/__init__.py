"""Helpers the tests share: a fake backend, ONNX model builders, keys, app and server runners."""
