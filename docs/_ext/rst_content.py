"""Directives that write reStructuredText, used from Markdown (MyST) pages as well as from reST ones.

A directive's ``parse_content_to_nodes`` parses with the host page's parser, so the
same generated text would mean different things on a MyST page and a reST page.
The site's directives generate reST (tables, roles such as ``:py:func:``, and the
docstrings they show, which are reST) and parse it as reST wherever they are used,
as MyST's own ``{eval-rst}`` does.
"""
from __future__ import annotations

from docutils.parsers.rst import Parser
from docutils.utils import new_document


def parse_rst(directive, lines: list[str], source: str) -> list:
    """The nodes of ``lines`` (reST), parsed in the directive's document, its settings and its reporter."""
    host = directive.state.document
    document = new_document(source, host.settings)
    document.reporter = host.reporter
    Parser().parse("\n".join(lines), document)
    return list(document.children)
