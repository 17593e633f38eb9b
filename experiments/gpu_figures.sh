#!/bin/bash
# Accelerator figures still to be taken (physics throughput, PEARL and MACAW at reference sizes,
# exact vs default precision, and the RL² split
# (bandit: cell_steps vs fused unroll; Cheetah-Dir: fused). Run from the repository root on the lent GPU, wheels in .whl/ (BUILD_NOTES,
# "Accelerator figures still open"): bash .whl/gpu_figures.sh, with .whl carried.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi -L; nproc; python3 -c "import jax, flax, optax, mujoco, brax; from mujoco import mjx; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'mujoco', mujoco.__version__, jax.devices())"; } 2>&1 | tee $OUT/machine.txt
t0=$(date +%s)
timeout 150 python3 -m pytest -q -x -o addopts= -p no:cacheprovider tests/test_locomotion.py::test_mjx_matches_mujoco_c_over_an_episode tests/test_native_env.py::test_native_env_matches_mjx_step_by_step 2>&1 | tail -6 | tee $OUT/exactness.txt
echo "exactness $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
timeout 200 python3 -m experiments.bench envs --bench_envs=cheetah_dir,ant_dir --env_batch_sizes=8192 2>&1 | grep -v -i warn | tee $OUT/bench_envs.txt
echo "envs $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
timeout 90 python3 -m experiments.bench rl2_bandit 2>&1 | grep -v -i warn | tee $OUT/bench_rl2.txt
timeout 90 python3 -m experiments.bench rl2_bandit --recurrent_unroll=fused 2>&1 | grep -v -i warn | tee $OUT/bench_rl2_fused.txt
echo "rl2 $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
timeout 120 python3 -m experiments.bench rl2_cheetah --sweep_members=1 --recurrent_unroll=fused 2>&1 | grep -v -i warn | tee $OUT/bench_rl2_cheetah.txt
echo "rl2_cheetah $(( $(date +%s) - t0 )) s"; t0=$(date +%s)
timeout 110 python3 -m experiments.bench pearl 2>&1 | grep -v -i warn | tee $OUT/bench_pearl.txt
echo "pearl $(( $(date +%s) - t0 )) s"
