"""``.. exercise-sequence::`` and ``.. exercise-tasks::``: the classroom exercises, from their registry and sources.

``exercise-sequence`` is the course as a table: number, name, the functions
to write, the notebook to read first, the exercises it builds on, the
expected time. ``exercise-tasks`` shows, for every exercise of
``dba_ref.exercises.EXERCISES``, its title, the functions the student writes,
the reference they are graded against (linked to the API), the command that
hands it out, and the "Task" section of the stub as the student reads it
(plain text, the stub's own layout). Nothing is retyped: a new exercise or an
edited task appears in the site at the next build, and a source that cannot
be read fails it. The stub's model solution is never shown.
"""
from __future__ import annotations

import re

from sphinx.util.docutils import SphinxDirective

from rst_content import parse_rst

#: A NumPy-style section header: a title line underlined with dashes.
HEADER = re.compile(r"^(?P<title>\S.*)\n-{3,}\n", re.MULTILINE)


def docstring_section(doc: str, title: str) -> str:
    """The body of section ``title`` of a NumPy-style docstring (up to the next section)."""
    headers = list(HEADER.finditer(doc))
    for here, following in zip(headers, headers[1:] + [None]):
        if here["title"].strip() == title:
            return doc[here.end():following.start() if following else len(doc)].strip()
    raise ValueError(f"the docstring has no {title!r} section")


def _references(exercise) -> list:
    refs = exercise.reference.values() if isinstance(exercise.reference, dict) else [exercise.reference]
    return [f":py:func:`{ref.__module__}.{ref.__qualname__}`" for ref in refs]


class ExerciseSequenceDirective(SphinxDirective):
    def run(self):
        from dba_ref.exercises import EXERCISES

        lines = [".. list-table::", "   :header-rows: 1", "",
                 "   * - N", "     - name", "     - write", "     - read first", "     - builds on", "     - time"]
        for ex in EXERCISES.values():
            lines += [f"   * - {ex.number}", f"     - ``{ex.slug}``",
                      "     - " + ", ".join(f"``{name}``" for name in ex.function_names),
                      f"     - ``{ex.reads_first}``",
                      "     - " + (", ".join(str(n) for n in ex.builds_on) or "—"),
                      f"     - {ex.minutes} min"]
        total = sum(ex.minutes for ex in EXERCISES.values())
        lines += ["", f"About {total // 60} h {total % 60:02d} min for the twelve, besides the notebooks.", ""]
        return parse_rst(self, lines, "<exercise-sequence>")


class ExerciseTasksDirective(SphinxDirective):
    def run(self):
        from dba_ref.exercises import EXERCISES
        from dba_ref.exercises.handouts import task_and_code

        lines = []
        for exercise in EXERCISES.values():
            path = exercise.source_path
            if not path.is_file():
                raise self.error(f"exercise {exercise.number}: its source {path} does not exist")
            self.env.note_dependency(str(path))
            task = docstring_section(task_and_code(exercise)[0], "Task")
            lines += [f".. rubric:: Exercise {exercise.number} · {exercise.title}", "",
                      f"Write {', '.join(f'``{name}``' for name in exercise.function_names)}; graded against "
                      f"{', '.join(_references(exercise))}. ``dba-ref exercises start {exercise.number}`` writes "
                      f"the stub (``{exercise.stub}``; ``--notebook`` for the notebook) into the current folder. "
                      "The task, as the stub states it:",
                      "", "::", "",
                      *[f"    {line}" for line in task.splitlines()], ""]
        return parse_rst(self, lines, "<exercise-tasks>")


def setup(app):
    app.add_directive("exercise-sequence", ExerciseSequenceDirective)
    app.add_directive("exercise-tasks", ExerciseTasksDirective)
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
