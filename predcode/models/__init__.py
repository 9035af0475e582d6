"""Model families. Each module stays close to its paper's equations."""

from .helmholtz import HelmholtzMachine
from .pcn import MLP, PCN, init_weights
from .rao_ballard import RaoBallard

__all__ = ["PCN", "MLP", "RaoBallard", "HelmholtzMachine", "init_weights"]
