"""metarl_jax: meta-reinforcement learning as pure JAX functions.

Layers, each importing only those listed before it: tasks, envs, nets, rl (baselines beside
algos: tasks, and envs/rl for scripted navigation levels), algos, sweep / io, data (offline
data sets), runs (reading a finished run back).
"""

__version__ = "0.1.0"


def load_policy(run_dir: str, member: dict | None = None, checkpoint: int | str | None = None):
    """A trained member's policy as functions (`metarl_jax.runs.policies`); imported on first
    call, so that `import metarl_jax` stays light."""
    from metarl_jax.runs.policies import load_policy as load

    return load(run_dir, member, checkpoint)
