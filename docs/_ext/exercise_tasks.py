"""``.. exercise-tasks::``: the classroom exercises, each with the task its stub states.

For every exercise of ``dba_ref.exercises.EXERCISES`` it shows the number and
title, the function the student writes, the reference it is graded against
(linked to the API), the stub (a download) and the "Task" section of its
docstring as the student reads it in the file (plain text, the stub's own
layout). Nothing is retyped: a new exercise or an edited task appears in the
site at the next build, and a stub that cannot be found fails it.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

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


class ExerciseTasksDirective(SphinxDirective):
    def run(self):
        from dba_ref.exercises import EXERCISES

        page_dir = (Path(self.env.srcdir) / self.env.doc2path(self.env.docname, base=False)).parent
        lines = []
        for exercise in EXERCISES.values():
            path = exercise.stub_path
            if not path.is_file():
                raise self.error(f"exercise {exercise.number}: its stub {path} does not exist")
            self.env.note_dependency(str(path))
            task = docstring_section(ast.get_docstring(ast.parse(path.read_text())) or "", "Task")
            reference = f"{exercise.reference.__module__}.{exercise.reference.__qualname__}"
            lines += [f".. rubric:: Exercise {exercise.number} · {exercise.title}", "",
                      f"Write ``{exercise.signature}``; graded against :py:func:`{reference}`. "
                      f"The task, from the stub :download:`{path.name} <{os.path.relpath(path, page_dir)}>` "
                      f"(``dba-ref exercises start {exercise.number}`` writes it into the current folder):",
                      "", "::", "",
                      *[f"    {line}" for line in task.splitlines()], ""]
        return parse_rst(self, lines, "<exercise-tasks>")


def setup(app):
    app.add_directive("exercise-tasks", ExerciseTasksDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
