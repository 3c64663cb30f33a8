"""nbgrader's configuration for this course (read by every `nbgrader ...` command run in this folder).

Layout (nbgrader's own defaults, rooted at this folder):
    source/mnist_mlp/       the instructor notebook: solutions and hidden tests (never handed out)
    release/mnist_mlp/      what students get (`make release`), committed
    submitted/, autograded/, feedback/, gradebook.db    grading state (gitignored)
    exchange/               the hand-out/hand-in folder of the Assignment List (`make exchange`)
"""
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "mnist-mlp"
c.CourseDirectory.root = COURSE_ROOT

# The exchange lives inside the course, so the Assignment List works without root-owned
# /usr/local/share/nbgrader/exchange; `make exchange` creates it with mode 777.
c.Exchange.root = os.path.join(COURSE_ROOT, "exchange")

# Per-cell limit while validating or autograding. The slowest cell is the training cell, which
# trains less while NBGRADER_EXECUTION is set (nbgrader sets it to "autograde" or "validate");
# about 10 s on 2 CPU cores.
c.Execute.timeout = 120

# A student who deletes a test cell gets it back (otherwise the cell scores None and needs a
# manual grade). Edited test cells are restored from the gradebook by checksum in any case.
c.OverwriteCells.add_missing_cells = True

# The grader's trusted run (hidden tests against the student's definitions, outside the student's
# kernel) leaves out the locked cells that only show things and that no test needs.
c.TrustedRun.skip_cells = ["browse_digits", "explore_hidden_size", "evaluate_plots", "sanity_initial_loss",
                           "sanity_gradients", "sanity_overfit", "first_layer"]
# ... and does not draw the figures of the cells it runs.
c.TrustedRun.stub_calls = ["helpers.plots.plot_samples", "helpers.plots.plot_history",
                           "helpers.widgets.LiveTrainingView.finish"]

# The grader's code below comes from the course's grader/ when the environment running nbgrader has
# no grader installed (the hub users' environment runs `nbgrader generate_assignment` here).
_GRADER = os.path.join(COURSE_ROOT, "grader")
if os.path.isdir(_GRADER) and _GRADER not in sys.path:
    sys.path.append(_GRADER)

# Every feedback of this course (Formgrader's Generate Feedback, `nbgrader generate_feedback`,
# `python -m mnist_grader feedback`) is the page a student can read: equations as MathML drawn
# offline, test cells titled by their task, no hidden test. Its settings are the feedback exporter's
# own, so Formgrader's Manual Grading page below is unchanged. See grader/mnist_grader/readable_feedback.py.
from mnist_grader.readable_feedback import configure_feedback  # noqa: E402

configure_feedback(c)

# Formgrader's Manual Grading shows each written answer's rubric (its source cell) above the
# student's answer, on the page only (grader/mnist_grader/rubric.py).
c.HTMLExporter.preprocessors = ["mnist_grader.rubric.ShowRubric"]
c.ShowRubric.source_folder = os.path.join(COURSE_ROOT, "source")

# `nbgrader autograde` and Formgrader's Autograde button grade in the sandbox, like
# `python -m mnist_grader autograde`: nbgrader runs no student code itself; its autograde step hands
# each submission to the sandboxed grader (student's kernel walled off, hidden tests in a separate
# trusted run, the lower verdict counts) and takes back the notebooks it wrote.
# See grader/mnist_grader/nbgrader_autograde.py.
c.Autograde.sanitize_preprocessors = []
c.Autograde.autograde_preprocessors = ["mnist_grader.nbgrader_autograde.SandboxedAutograde"]

# Formgrader's Collect and `nbgrader collect` copy each submission without following a link a
# student put into it (plain nbgrader's collect would copy the link's target, say this course's
# source notebook, into submitted/ and on into that student's feedback), and refuse a folder named
# after another student than its owner. See grader/mnist_grader/exchange_collect.py.
c.ExchangeFactory.collect = "mnist_grader.exchange_collect.SafeCollect"

# Before nbgrader's autograde copies a submission's other files (as the instructor, following
# links, before any autograde step), a submitted folder holding anything but plain files and
# folders is refused with the reason. See grader/mnist_grader/nbgrader_autograde.py.
c.Autograde.pre_convert_hook = "mnist_grader.nbgrader_autograde.refuse_unsafe_submission"
