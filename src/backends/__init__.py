"""Execution backends behind one small interface: ONNX Runtime today, remote servers later."""
