"""The Open Inference Protocol (KServe v2): datatypes, wire models and the JSON tensor codec."""
