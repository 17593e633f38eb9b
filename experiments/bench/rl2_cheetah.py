"""rl2_cheetah: one RL²-PPO iteration on Cheetah-Direction (MJX) at the rl2_cheetah_dir flag
file's setting (GRU 64, trials of 2 episodes of horizon 200, 5 PPO epochs, meta-batch 100), split
into the trial collection, the PPO update and the whole iteration (`rl2_split`). On a CPU the
meta-batch and the members are reduced (the `sizes:` line says so; --reference_sizes runs the
reference).

Last lines: rl2_cheetah_{collect,update,iteration}_ms of one member and the iteration over the
collection.
"""

from absl import flags

from experiments.bench.measure import machine_description, sizes
from experiments.bench.rl2_split import measure_split, rl2_config
from metarl_jax.envs import make_env

flags.DEFINE_integer(
    "rl2_meta_batch_size", None, "rl2_cheetah: tasks per iteration (100; on a CPU 10)."
)
FLAGS = flags.FLAGS


def run() -> None:
    print(f"machine: {machine_description()}")
    size = sizes(
        {"repeats": 3, "sweep_members": 4, "rl2_meta_batch_size": 100},
        on_cpu={"repeats": 2, "sweep_members": 1, "rl2_meta_batch_size": 10},
    )
    env = make_env("cheetah_dir", horizon=200, physics="mjx")
    config = rl2_config(
        horizon=200,
        episodes_per_trial=2,
        max_meta_batch_size=size["rl2_meta_batch_size"],
    )
    print(
        f"RL²-PPO on {env.name} (MJX), meta-batch {config.max_meta_batch_size}, trials of "
        f"{config.episodes_per_trial} x {config.horizon} steps, GRU {config.hidden_sizes}, "
        f"{config.ppo_epochs} epochs, --recurrent_unroll={config.recurrent_unroll} "
        f"--bptt_window={config.bptt_window}"
    )
    measure_split("rl2_cheetah", env, config, size["sweep_members"], size["repeats"])
