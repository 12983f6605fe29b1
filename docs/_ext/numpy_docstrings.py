"""NumPy-style docstrings through napoleon, except the prose comments of attributes and data.

napoleon reads the first line of an attribute's or a constant's docstring as
``TYPE: description``, so ``#: Tolerances: an entry is right when ...`` would
render "Tolerances" as a type (and, under ``-n``, a missing reference). This
project writes those comments as sentences; they are shown as written. Every
other docstring (modules, classes, functions, methods) goes through napoleon
as usual.
"""
from __future__ import annotations

from sphinx.ext import napoleon

PROSE = {"attribute", "data", "property"}


def process_docstring(app, what, name, obj, options, lines) -> None:
    if what not in PROSE:
        napoleon._process_docstring(app, what, name, obj, options, lines)


def setup(app):
    meta = napoleon.setup(app)
    for listener in list(app.events.listeners["autodoc-process-docstring"]):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", process_docstring)
    return {**meta, "version": "1"}
