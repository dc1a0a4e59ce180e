"""Typed per-model bodies without HTTP: schemas generated from a signature, and their codec."""
