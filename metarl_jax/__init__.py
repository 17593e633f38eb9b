"""metarl_jax: meta-reinforcement learning as pure JAX functions.

Layers, each importing only those listed before it: tasks, envs, nets, rl, algos, sweep / io.
"""

__version__ = "0.1.0"
