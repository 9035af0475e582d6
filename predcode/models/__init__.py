"""Model families. Each module stays close to its paper's equations."""

from .pcn import MLP, PCN, init_weights
from .rao_ballard import RaoBallard
from .helmholtz import HelmholtzMachine

__all__ = ["PCN", "MLP", "RaoBallard", "HelmholtzMachine", "init_weights"]
