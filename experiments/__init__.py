"""Experiment apps (absl) and their flag files.

Importing this package, before JAX starts its backend, adds an XLA CPU flag: with jaxlib 0.10.2,
batched MJX steps of >= 512 Ant or 1,024 Cheetah episodes otherwise deadlock on this project's
2-core CPU (two batched LAPACK Cholesky calls of MJX's Newton solver wait on the same intra-op
thread pool). With the flag they run, at the same speed at smaller batches.
"""

import os

XLA_CPU_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if XLA_CPU_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_CPU_FLAG}".strip()
