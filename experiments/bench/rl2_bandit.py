"""rl2_bandit: one RL²-PPO iteration at the rl2_bandit flag file's setting (meta-batch 100 bandits,
one trial of --bandit_pulls pulls each, GRU 64, 5 PPO epochs of --bandit_minibatches minibatches;
1 is ProMP's setting and the first figures), split into the trial collection,
the PPO update and the whole iteration, for one sweep member and for --sweep_members vmapped in
one call (`rl2_split`).

Last lines: rl2_bandit_{collect,update,iteration}_ms of one member, the iteration over the
collection, updates/s and env steps/s.
"""

from absl import flags

from experiments.bench.measure import machine_description, sizes
from experiments.bench.rl2_split import measure_split, rl2_config
from metarl_jax.envs import make_env

flags.DEFINE_integer("bandit_arms", 5, "rl2_bandit: arms.")
flags.DEFINE_integer("bandit_pulls", 100, "rl2_bandit: pulls per trial.")
flags.DEFINE_integer("bandit_minibatches", 4, "rl2_bandit: minibatches (of tasks) per epoch.")
FLAGS = flags.FLAGS


def run() -> None:
    print(f"machine: {machine_description()}")
    size = sizes({"repeats": 5, "sweep_members": 8})
    arms, pulls = FLAGS.bandit_arms, FLAGS.bandit_pulls
    env = make_env("bandit", horizon=pulls, num_arms=arms)
    config = rl2_config(
        horizon=pulls,
        episodes_per_trial=1,
        max_meta_batch_size=100,
        num_minibatches=FLAGS.bandit_minibatches,
    )
    print(
        f"RL²-PPO, {arms}-armed bandits, {pulls} pulls per trial, meta-batch "
        f"{config.max_meta_batch_size}, GRU {config.hidden_sizes}, {config.ppo_epochs} epochs of "
        f"{config.num_minibatches} minibatch(es), "
        f"--recurrent_unroll={config.recurrent_unroll} --bptt_window={config.bptt_window}"
    )
    single = measure_split("rl2_bandit", env, config, size["sweep_members"], size["repeats"])
    steps = config.max_meta_batch_size * pulls
    print(f"rl2_bandit_updates_per_s: {1.0 / single['iteration']:.3f}")
    print(f"rl2_bandit_steps_per_s: {steps / single['iteration']:.0f}")
