"""Model families. Each module stays close to its paper's equations."""

from .pcn import MLP, PCN, init_weights
from .rao_ballard import RaoBallard
from .variational_laplace import VLResult, hierarchical_em, variational_laplace

__all__ = ["PCN", "MLP", "RaoBallard", "init_weights", "variational_laplace", "hierarchical_em",
           "VLResult"]
