"""The inside-TEE runtime: unseal a model in memory and serve it with ONNX Runtime.

Imports from ``ccdeploy`` only what a sealed model and a release client need (never the CLI, the
broker or the KEK providers); the import-linter contracts in pyproject.toml enforce it.
"""
