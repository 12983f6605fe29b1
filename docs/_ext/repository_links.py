"""Relative links of the repository's Markdown, resolved from the file that wrote them.

The site shows Markdown written for the repository: ``README.md`` (included by pages
of ``docs/``) and ``tutorials/README.md`` (copied to ``docs/tutorials/`` before the
build, see ``conf.py``). Their links are relative to where *they* live, while MyST
resolves a link from the page that shows it. A link that MyST cannot resolve is
taken here from the file it was written in (a copied page from its original, an
included file from itself) and becomes

- a link to the page, when it names a page of the site
  (``[spec](../docs/spec.md)`` in ``tutorials/README.md`` -> the Specification);
- a download link, when it names a file of the repository that is no page
  (``[ex2_gram.py](../dba_ref/exercises/stubs/ex2_gram.py)``: the site carries a copy);
- the folder's path in code font, when it names a folder (``dba_ref/exercises/``):
  a code host shows a folder as a file listing, a static site has no such page.

A link to nothing is left alone, and MyST reports it as broken.
"""
from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from docutils.utils import get_source_line
from sphinx import addnodes
from sphinx.transforms import SphinxTransform


def repository_root(srcdir: Path) -> Path:
    """The checkout the documentation folder belongs to (the parent of ``docs/``)."""
    return srcdir.parent


def _rebase(path: Path, folders: list[tuple[Path, Path]]) -> Path:
    """``path`` moved from the first ``old`` folder it lies in to its ``new`` one; unchanged if in none."""
    for old, new in folders:
        if path.is_relative_to(old):
            return new / path.relative_to(old)
    return path


def original(path: Path, srcdir: Path, copies: dict[str, str]) -> Path:
    """Where ``path`` comes from: under a copied folder of ``srcdir``, the same path in the repository."""
    root = repository_root(srcdir)
    return _rebase(path, [(srcdir / copy, root / source) for copy, source in copies.items()])


def shown_in_site(path: Path, srcdir: Path, copies: dict[str, str]) -> Path:
    """Where the site has ``path``: a file of the repository whose copy the site reads, that copy."""
    root = repository_root(srcdir)
    return _rebase(path, [(root / source, srcdir / copy) for copy, source in copies.items()])


class RepositoryLinks(SphinxTransform):
    default_priority = 210     # after MyST made the links (at parsing); before the downloads are collected

    def apply(self, **kwargs) -> None:
        srcdir = Path(self.env.srcdir)
        root = repository_root(srcdir)
        copies = self.config.repository_copies
        page_dir = (srcdir / self.env.doc2path(self.env.docname, base=False)).parent
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or node.get("refdomain"):
                continue
            written_in = get_source_line(node)[0] or self.document["source"]
            path, _, anchor = node["reftarget"].partition("#")
            if not path or not written_in:
                continue
            target = (original(Path(written_in).resolve(), srcdir, copies).parent / path).resolve()
            if not target.is_relative_to(root) or not target.exists():
                continue
            in_site = shown_in_site(target, srcdir, copies)
            docname = self.env.path2doc(str(in_site)) if in_site.is_file() else None
            if docname:
                node["refdomain"], node["reftarget"], node["reftargetid"] = "doc", docname, anchor or None
            elif target.is_file():
                download = addnodes.download_reference(
                    "", *node.children, refdomain=None, reftype="myst", refexplicit=node.get("refexplicit"),
                    reftarget=os.path.relpath(in_site, page_dir), refdoc=self.env.docname)
                download.source, download.line = node.source, node.line
                node.replace_self(download)
            else:
                shown = f"{target.relative_to(root).as_posix()}/"
                node.replace_self(nodes.literal(shown, shown))


def setup(app):
    app.add_config_value("repository_copies", {}, "env", types=[dict])
    app.add_transform(RepositoryLinks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
