"""One module per section of the report; `SECTIONS` maps an `--experiment` to its writer, which
takes the section's runs, the report's numbers (`member_stats.StatsTable`, computed before any
section renders), the figures directory, the set of figure names already used and the list its
answers join (the report's summary table, `common.GlanceRow`), and returns the section's
Markdown lines ("" is the runs outside the study)."""

from experiments.report.sections.a_training_tasks import section_a
from experiments.report.sections.b_macaw import section_b
from experiments.report.sections.c_meta_batch_size import section_c
from experiments.report.sections.d_out_of_sample import section_d
from experiments.report.sections.e_adaptation_steps import section_e
from experiments.report.sections.f_step_sizes import section_f
from experiments.report.sections.other_runs import section_other
from experiments.study_design import STUDY_EXPERIMENTS

TITLES = {
    **{letter: experiment.title for letter, experiment in STUDY_EXPERIMENTS.items()},
    "": "Other runs (outside the study)",
}
SECTIONS = {
    "a": section_a,
    "b": section_b,
    "c": section_c,
    "d": section_d,
    "e": section_e,
    "f": section_f,
    "": section_other,
}
