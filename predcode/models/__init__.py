"""Model families. Each module stays close to its paper's equations."""

from .active_inference import GenerativeModel, make_model, run_trials
from .adem_spm import spm_adem  # noqa: F401 (not in __all__: predcode/__init__.py is the lead's)
from .agent import Agent
from .dem import DEM, extended_kalman_filter, generalized_filter
from .generalized import HDM, Level
from .hdm_zoo import zoo_model
from .helmholtz import HelmholtzMachine
from .jepa import IJEPA
from .lap import LAP
from .pcn import MLP, PCN, init_weights
from .rao_ballard import RaoBallard
from .world_model import LatentWorldModel, PixelWorldModel

__all__ = [
    "PCN",
    "MLP",
    "RaoBallard",
    "init_weights",
    "DEM",
    "LAP",
    "HDM",
    "Level",
    "zoo_model",
    "generalized_filter",
    "extended_kalman_filter",
    "Agent",
    "GenerativeModel",
    "make_model",
    "run_trials",
    "HelmholtzMachine",
    "IJEPA",
    "LatentWorldModel",
    "PixelWorldModel",
]
