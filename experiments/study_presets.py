"""The study's runs per preset: (flag file in experiments/flags/study/, algorithm, overrides)."""

import os

STUDY_FLAGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags", "study")
ONLINE_ALGOS = ("maml_trpo", "maml_ppo", "rl2_ppo")
MAML_ALGOS = ("maml_trpo", "maml_ppo")

# CPU sizes: 5 seeds everywhere; bandits with n = 10 pulls, navigation with shorter episodes and
# fewer of them. Per-algorithm lengths keep every run within a few minutes on 2 cores.
CPU_BANDIT = ("--num_eval_tasks=100", "--log_every=10")
CPU_NAVIGATION = (
    "--horizon=50",
    "--rollouts_per_task=10",
    "--num_eval_tasks=10",
    "--fisher_subsample=0.5",
    "--log_every=10",
)
CPU_ITERATIONS = {
    ("bandit", "maml_trpo"): 60,
    ("bandit", "maml_ppo"): 60,
    ("bandit", "rl2_ppo"): 150,
    ("navigation", "maml_trpo"): 40,
    ("navigation", "maml_ppo"): 40,
    ("navigation", "rl2_ppo"): 60,
}
CPU_ALGO_FLAGS = {"rl2_ppo": ("--meta_batch_size=40",)}


def _cpu_runs():
    runs = []
    for flagfile in ("a_bandit", "c_bandit", "d_navigation", "e_navigation", "e_navigation_full"):
        env = flagfile.split("_")[1]
        algos = MAML_ALGOS if flagfile.startswith("e_") else ONLINE_ALGOS
        for algo in algos:
            overrides = CPU_BANDIT if env == "bandit" else CPU_NAVIGATION
            extra = CPU_ALGO_FLAGS.get(algo, ()) if not flagfile.startswith("c_") else ()
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
    return runs


def _gpu_runs():
    runs = []
    for flagfile in ("a_ant_dir", "c_ant_dir", "d_ant_dir", "d_cheetah_vel"):
        runs += [(flagfile, algo, ()) for algo in ONLINE_ALGOS]
    for flagfile in ("e_ant_dir", "e_ant_dir_full", "e_cheetah_vel", "e_cheetah_vel_full"):
        runs += [(flagfile, algo, ()) for algo in MAML_ALGOS]
    return runs


PRESETS = {"cpu": _cpu_runs, "gpu": _gpu_runs}
