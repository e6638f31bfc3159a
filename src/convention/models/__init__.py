"""Models: plain nn.Modules and their registry."""

from convention.models.registry import create_model, gflops_per_object, list_models

__all__ = ["create_model", "gflops_per_object", "list_models"]
