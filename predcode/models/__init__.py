"""Model families. Each module stays close to its paper's equations."""

from .pcn import MLP, PCN, init_weights

__all__ = ["PCN", "MLP", "init_weights"]
