"""metarl_jax: meta-reinforcement learning as pure JAX functions.

Layers, each importing only those listed before it: tasks, envs, nets, rl (baselines beside
algos: tasks, and envs/rl for scripted navigation levels), algos, sweep / io, data (offline
data sets).
"""

__version__ = "0.1.0"
