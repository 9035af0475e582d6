"""Shared yardsticks for predcode models.

Receptive-field metrics (:mod:`predcode.metrics.receptive_fields`): Gabor fits,
the fraction of Gabor-like fields, localisation and orientation selectivity.

Likelihoods in bits (:mod:`predcode.metrics.likelihood`): exact log-likelihood,
KL divergence and free energy of sigmoid belief networks, importance sampling.
"""

from .likelihood import (
    free_energy_bits,
    importance_log_likelihood_bits,
    kl_bits,
    kl_divergence_bits,
    log_likelihood_bits,
)
from .receptive_fields import (
    DEFAULT_N_STARTS,
    DEFAULT_R2_THRESHOLD,
    GABOR_PARAMS,
    fit_gabor,
    gabor,
    gabor_fit_fraction,
    localisation_and_orientation,
)
from .representations import effective_rank, linear_probe, ridge_fit

__all__ = [
    "GABOR_PARAMS",
    "DEFAULT_N_STARTS",
    "DEFAULT_R2_THRESHOLD",
    "gabor",
    "fit_gabor",
    "gabor_fit_fraction",
    "localisation_and_orientation",
    "log_likelihood_bits",
    "kl_bits",
    "kl_divergence_bits",
    "free_energy_bits",
    "importance_log_likelihood_bits",
    "effective_rank",
    "linear_probe",
    "ridge_fit",
]
