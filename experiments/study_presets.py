"""The study's runs per preset: (flag file in experiments/flags/study/, algorithm, overrides)."""

import os

from experiments.study_design import algorithms_for_experiment

STUDY_FLAGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags", "study")


def algorithms_for(flagfile: str) -> tuple[str, ...]:
    """The algorithms a study flag file (`<experiment>_<env>`) applies to: those whose registry
    entry joins the experiment and runs on the env's kind of actions (bandits: discrete); a step
    sizes file (`f_<algo>`) is its algorithm's alone."""
    if flagfile.startswith("f_"):
        return (flagfile[2:],)
    return algorithms_for_experiment(flagfile[0], discrete_actions=flagfile.endswith("_bandit"))


# CPU sizes: 5 seeds (PEARL's (a) and (c): 3, below); bandits with the flag files' n = 20 pulls,
# navigation with shorter episodes and fewer of them; evaluated every 5 iterations so that the
# plateau test has two logs per quarter of a 40-iteration run. Per-algorithm lengths keep every run
# within a few minutes on 2 cores.
CPU_BANDIT = ("--num_eval_tasks=100", "--log_every=5")
CPU_NAVIGATION = (
    "--horizon=50",
    "--rollouts_per_task=10",
    "--num_eval_tasks=10",
    "--fisher_subsample=0.5",
    "--log_every=5",
)
CPU_ITERATIONS = {
    ("bandit", "maml_trpo"): 60,
    ("bandit", "maml_ppo"): 60,
    ("bandit", "rl2_ppo"): 150,
    ("navigation", "maml_trpo"): 40,
    ("navigation", "maml_ppo"): 60,
    ("navigation", "rl2_ppo"): 60,
}
CPU_ALGO_FLAGS = {"rl2_ppo": ("--meta_batch_size=40",)}
# RL² on bandits (the rl2_bandit flag file's setting): Adam 3e-3, GAE lambda 0.9 and,
# where the meta-batch is fixed, 4 minibatches of tasks per epoch; (c) sweeps the meta-batch down
# to one task, which has no 4 minibatches to split, so its members keep one gradient step per
# epoch alike.
CPU_BANDIT_ALGO_FLAGS = {"rl2_ppo": ("--outer_lr=3e-3", "--gae_lambda=0.9")}
CPU_BANDIT_FIXED_BATCH_FLAGS = {"rl2_ppo": ("--num_minibatches=4",)}
# PEARL on navigation at CPU sizes: pearl_nav's protocol (exploration by uniform
# actions, the encoder trained by a reward decoder, the rank-one posterior family, reward scale
# 100 with alpha 1; its networks),
# at horizon 50 as the other algorithms' navigation runs so that (d) compares them on one plot.
# 100 iterations x 100 gradient steps: the full-distribution member is flat from ~50 (measured,
# BUILD_NOTES). RL buffers of 1e4: 'all' (40 tasks) never wraps; k = 1 keeps its last 1e4.
CPU_PEARL = (
    "--horizon=50",
    "--latent_size=3",
    "--hidden_sizes=64,64",
    "--encoder_hidden_sizes=64,64",
    "--initial_steps=100",
    "--num_tasks_sample=4",
    "--prior_steps=100",
    "--posterior_steps=100",
    "--grad_steps=100",
    "--batch_size=64",
    "--context_batch_size=64",
    "--replay_capacity=10000",
    "--task_pool_size=40",
    "--nolearn_alpha",
    "--alpha=1",
    "--reward_scale=100",
    "--kl_weight=0.1",
    "--exploration=uniform_actions",
    "--reward_decoder_weight=10",
    "--nocritic_trains_encoder",
    "--posterior_family=rank_one",
    "--eval_episodes=3",
    "--num_eval_tasks=10",
    "--log_every=10",
    "--num_iterations=100",
)
# A PEARL member costs what 16 tasks' gradient steps cost on 2 cores (~0.45 s per iteration), so
# (a) and (c) sweep fewer values with 3 seeds (the report lists each run's seeds and values);
# (d), which compares the algorithms, keeps the flag file's 5 seeds.
CPU_PEARL_SWEEP = {
    "a_navigation": ("--seeds=0,1,2", "--num_train_tasks=1,8,all", "--meta_batch_size=16"),
    "c_navigation": ("--seeds=0,1,2", "--meta_batch_size=1,4,16"),
    "d_navigation": ("--meta_batch_size=16",),
}
# PEARL at the seed's sizes: about 1e6 env steps per member (oyster's budget on Cheetah-Dir and
# Ant-Dir), 4,000 gradient steps per iteration on Ant (oyster). 'all' is a pool of 50 tasks with
# buffers. A draw adds 2e3 transitions (prior + posterior) to the task's RL buffer; with 5 of 50
# tasks drawn per iteration a task of 'all' gathers 2e3 + 100 x 5 / 50 x 2e3 = 2.2e4, so buffers
# of 2.5e4 never wrap there. Smaller k wrap (k = 1 gathers 1e6 and keeps its last 2.5e4, about
# 12 iterations' worth): in (a) a smaller k also means older data forgotten, as it would with
# any fixed per-task capacity. Buffers of the 35 members of (a): 12 GiB on the device and in
# every checkpoint (3 kept).
# On 2-D Ant-Dir a transition's reward is one linear equation in the direction (cos, sin): the
# rank-one posterior family adds such evidence and oyster's diagonal one cannot (the supervised
# check of tools.encoder_families on random-play contexts: held-out R² 0.79 vs 0.52);
# Cheetah-Vel's task is one number, which both families code (0.98 vs 0.99), so it keeps oyster's.
GPU_PEARL = {
    "ant_dir": ("--grad_steps=4000", "--posterior_family=rank_one"),
    "cheetah_vel": (),
}
GPU_PEARL_SHARED = (
    "--task_pool_size=50",
    "--replay_capacity=25000",
    "--num_iterations=100",
    "--log_every=10",
)


# Study (f), step sizes, one flag file per algorithm (f_<algo>: a 3 x 3 grid of two step sizes
# x 3 seeds, 27 members in one call). On the CPU at the other runs' navigation sizes (PEARL at
# CPU_PEARL's, 60 iterations: 27 members cost what 5 cost in 100 iterations x 3; RL² at 300: at
# 60 no cell of its grid had left the lower level); MACAW on the bandit data set at its flag
# file's sizes.
STEP_SIZE_ALGORITHMS = ("maml_trpo", "maml_ppo", "rl2_ppo", "pearl", "macaw")
CPU_STEP_SIZE_ITERATIONS = {"maml_trpo": 40, "maml_ppo": 60, "rl2_ppo": 300, "pearl": 60}
# On the GPU on Ant-Dir at the (a)-(d) runs' sizes; MACAW, the offline learner, on its bandits.
GPU_STEP_SIZE_ENV = ("--env=ant_dir", "--horizon=200")


def _step_size_runs(preset: str) -> list:
    runs = []
    for algo in STEP_SIZE_ALGORITHMS:
        flagfile = f"f_{algo}"
        if algo == "macaw":
            runs.append((flagfile, algo, ()))
        elif preset == "cpu":
            sizes = (*CPU_PEARL, "--log_every=5") if algo == "pearl" else CPU_NAVIGATION
            iterations = CPU_STEP_SIZE_ITERATIONS[algo]
            runs.append((flagfile, algo, (*sizes, f"--num_iterations={iterations}")))
        else:
            sizes = (*GPU_PEARL["ant_dir"], *GPU_PEARL_SHARED) if algo == "pearl" else ()
            runs.append((flagfile, algo, (*GPU_STEP_SIZE_ENV, *sizes)))
    return runs


# PEARL and MACAW runs take sizes of their own (listed with their runs below).
OWN_SIZES = ("pearl", "macaw")


def _shared_size_algorithms(flagfile: str) -> tuple[str, ...]:
    return tuple(algo for algo in algorithms_for(flagfile) if algo not in OWN_SIZES)


def _cpu_runs():
    runs = []
    for flagfile in ("a_bandit", "c_bandit", "d_navigation", "e_navigation", "e_navigation_full"):
        env = flagfile.split("_")[1]
        for algo in _shared_size_algorithms(flagfile):
            overrides = CPU_BANDIT if env == "bandit" else CPU_NAVIGATION
            extra = CPU_ALGO_FLAGS.get(algo, ()) if not flagfile.startswith("c_") else ()
            if env == "bandit":
                extra = (*extra, *CPU_BANDIT_ALGO_FLAGS.get(algo, ()))
                if not flagfile.startswith("c_"):
                    extra = (*extra, *CPU_BANDIT_FIXED_BATCH_FLAGS.get(algo, ()))
            iterations = CPU_ITERATIONS[(env, algo)]
            runs.append(
                (
                    flagfile,
                    algo,
                    (
                        *overrides,
                        *extra,
                        f"--num_iterations={iterations}",
                    ),
                )
            )
    runs += [
        (flagfile, "pearl", (*CPU_PEARL, *CPU_PEARL_SWEEP[flagfile]))
        for flagfile in CPU_PEARL_SWEEP
    ]
    runs.append(("b_bandit", "macaw", ()))  # the flag file's sizes: about 2 min on 2 cores
    return runs + _step_size_runs("cpu")


def _gpu_runs():
    runs = []
    for flagfile in ("a_ant_dir", "c_ant_dir", "d_ant_dir", "d_cheetah_vel"):
        runs += [(flagfile, algo, ()) for algo in _shared_size_algorithms(flagfile)]
        env = flagfile.split("_", 1)[1]
        runs.append((flagfile, "pearl", (*GPU_PEARL[env], *GPU_PEARL_SHARED)))
    for flagfile in ("e_ant_dir", "e_ant_dir_full", "e_cheetah_vel", "e_cheetah_vel_full"):
        runs += [(flagfile, algo, ()) for algo in _shared_size_algorithms(flagfile)]
    runs.append(("b_bandit", "macaw", ()))
    return runs + _step_size_runs("gpu")


# Offline data sets the study makes first (python -m experiments.make_offline_data, into
# <out_dir>/offline_data/<name>), and which flag files read them (--offline_data is pointed there).
OFFLINE_DATA = {
    "bandit5": (
        "--env=bandit",
        "--num_arms=5",
        "--num_train_tasks=50",
        "--num_test_tasks=20",
        "--steps_per_task=5000",
    ),
}
DATA_OF = {"b_bandit": "bandit5", "f_macaw": "bandit5"}

PRESETS = {"cpu": _cpu_runs, "gpu": _gpu_runs}
