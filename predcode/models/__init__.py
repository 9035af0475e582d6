"""Model families. Each module stays close to its paper's equations."""

from .active_inference import GenerativeModel, make_model, run_trials
from .pcn import MLP, PCN, init_weights
from .rao_ballard import RaoBallard

__all__ = ["PCN", "MLP", "RaoBallard", "init_weights", "GenerativeModel", "make_model",
           "run_trials"]
