"""Benchmarks behind ``predcode bench``: cases, timing and machine description."""

from .aif import bench_aif
from .machine import machine_info
from .pcn import bench_pcn, pcn_step_flops

__all__ = ["bench_pcn", "pcn_step_flops", "machine_info", "bench_aif"]
