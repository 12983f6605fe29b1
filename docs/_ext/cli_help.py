"""``.. cli-help:: exercises check``: what ``dba-ref exercises check --help`` prints, at build time.

The text comes from the ``dba-ref`` command's own parser (``dba_ref.cli.build_parser``),
so a page never shows an option that the installed command does not have. The
width is fixed at 100 columns so the page does not depend on the terminal of
whoever builds it.
"""
from __future__ import annotations

import contextlib
import io
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

WIDTH = "100"


def help_text(words: list[str]) -> str:
    """The output of ``dba-ref WORDS --help``."""
    from dba_ref.cli import build_parser

    out = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args([*words, "--help"])
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return out.getvalue().rstrip()


class CliHelpDirective(SphinxDirective):
    required_arguments = 0
    optional_arguments = 5

    def run(self):
        text = help_text(self.arguments)
        if not text:
            raise self.error(f"`dba-ref {' '.join(self.arguments)} --help` printed nothing")
        block = nodes.literal_block(text, text, language="text")
        caption = f"dba-ref {' '.join(self.arguments)} --help".replace("  ", " ")
        return [nodes.container("", nodes.caption(caption, "", nodes.literal(caption, caption)), block,
                                classes=["literal-block-wrapper"], literal_block=True)]


def setup(app):
    app.add_directive("cli-help", CliHelpDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
