"""Benchmarks behind ``predcode bench``: cases, timing and machine description."""

from ..machine import machine_info
from .aif import bench_aif
from .helmholtz import bench_helmholtz
from .jepa import bench_jepa
from .pcn import bench_pcn, pcn_step_flops

__all__ = ["bench_pcn", "pcn_step_flops", "machine_info", "bench_aif", "bench_jepa",
           "bench_helmholtz"]
