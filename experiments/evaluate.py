"""Evaluate a trained run again: other tasks, more adaptation steps or episodes, chosen members.

    python -m experiments.evaluate --run=RUN
    python -m experiments.evaluate --run=RUN --eval_tasks=range:0,0.5,0,0.5 --adapt_steps=5
    python -m experiments.evaluate --run=RUN --best --member=seed=0 --episodes=4

Restores the run's latest checkpoint (or --checkpoint=N, or --best), rebuilds its algorithm from
run.json with the evaluation settings asked for, runs the algorithm's own evaluation (the one
training logged) on the chosen members, prints the metrics with 95 % CIs over seeds beside the
reference levels of the evaluation tasks, and writes evaluations/<name>.json in the run.
"""

from absl import flags

from experiments.app_plumbing import UsageError, run_app
from experiments.evaluation import (
    EvaluationOptions,
    evaluate,
    evaluation_plan,
    format_results,
    write_results,
)
from metarl_jax.algos.settings import EVAL_SEED
from metarl_jax.runs import RunError

FLAGS = flags.FLAGS

flags.DEFINE_string("run", None, "The run directory (what experiments.main wrote).")
flags.DEFINE_integer("checkpoint", None, "Evaluate the checkpoint of this iteration.")
flags.DEFINE_bool("best", False, "Evaluate the best checkpoint (checkpoints/best).")
flags.DEFINE_multi_string(
    "member",
    [],
    "Members to evaluate by their sweep values, e.g. seed=0,inner_lr=0.1 (repeatable; a member "
    "matching any is evaluated). Default: every member.",
)
flags.DEFINE_string(
    "env", None, "The run's env, to check (a run evaluates on the env it trained on)."
)
flags.DEFINE_string(
    "eval_tasks", None, "Evaluation tasks, as experiments.main's --eval_tasks (default: the run's)."
)
flags.DEFINE_integer("num_eval_tasks", None, "Evaluation tasks (default: the run's).")
flags.DEFINE_integer("eval_seed", EVAL_SEED, "Seed of the evaluation tasks and episodes.")
flags.DEFINE_integer(
    "adapt_steps", None, "MAML, MACAW: adaptation steps at evaluation (default: the run's)."
)
flags.DEFINE_integer(
    "episodes", None, "RL²: episodes per trial; PEARL: episodes per task (default: the run's)."
)
flags.DEFINE_string(
    "name", None, "Name of evaluations/<name>.json (default: made from the options)."
)
flags.DEFINE_bool(
    "render",
    False,
    "Also draw the first chosen member's adaptation on the first --render_tasks evaluation tasks "
    "into evaluations/<name>_pictures/ (locomotion: a GIF by MuJoCo's renderer under "
    "MUJOCO_GL=osmesa, or a matplotlib drawing where no GL backend works).",
)
flags.DEFINE_integer("render_tasks", 4, "Tasks in the pictures of --render (at least 1).")


def options_from_flags() -> EvaluationOptions:
    return EvaluationOptions(
        run=FLAGS.run,
        checkpoint=FLAGS.checkpoint,
        best=FLAGS.best,
        members=tuple(FLAGS.member),
        env=FLAGS.env,
        eval_tasks=FLAGS.eval_tasks,
        num_eval_tasks=FLAGS.num_eval_tasks,
        eval_seed=FLAGS.eval_seed,
        adapt_steps=FLAGS.adapt_steps,
        episodes=FLAGS.episodes,
        name=FLAGS.name,
        render=FLAGS.render,
    )


def main(argv):
    """Exit code 0; 2 for bad input (a UsageError, printed by `run_app`)."""
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.render_tasks < 1:
        raise UsageError(f"--render_tasks: {FLAGS.render_tasks}; at least 1")
    plan = evaluation_plan(options_from_flags())
    try:
        results = evaluate(plan)
    except RunError as error:  # what only restoring finds: a moved data set, a damaged record
        raise UsageError(f"--run: {error}") from None
    print(
        f"{results['algo']} on {results['env']}, checkpoint of iteration {results['iteration']}, "
        f"{len(plan.members)} members"
    )
    print(format_results(results))
    write_results(plan.out_path, results)
    print(f"\nresults in {plan.out_path}", flush=True)
    if FLAGS.render:
        render(plan)
    return 0


def render(plan) -> None:
    from experiments.pictures.of_run import write_run_pictures  # loads matplotlib and MuJoCo

    out_dir = plan.out_path.removesuffix(".json") + "_pictures"
    written = write_run_pictures(
        plan.run_dir,
        out_dir,
        checkpoint=plan.checkpoint,
        member=plan.members[0],
        config_changes=plan.config_changes,
        num_tasks=FLAGS.render_tasks,
        seed=plan.config_changes["eval_seed"],
    )
    for path, drawn_by in written:
        print(f"picture {path} ({drawn_by})", flush=True)


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
