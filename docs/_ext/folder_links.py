"""A Markdown link to a folder, ``[exercises/](exercises/)``, becomes the folder's path in code font.

The repository's Markdown files link folders, which a code host shows as a file
listing; a static site has no such page. Such a link is replaced by the folder's
path relative to the repository (``tutorials/exercises/``) when that folder exists,
so the reader still learns where to look. A link to a folder that does not exist
is left alone, and MyST reports it as broken.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform


def repository_root(srcdir: Path) -> Path:
    """The checkout the documentation folder belongs to (the parent of ``docs/``)."""
    return srcdir.parent


class FolderLinks(SphinxPostTransform):
    default_priority = 8     # before MyST's resolver (9), which would report the link as missing

    def run(self, **kwargs) -> None:
        srcdir = Path(self.env.srcdir)
        root = repository_root(srcdir)
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or node.get("refdomain"):
                continue
            target = node["reftarget"]
            page_dir = (srcdir / self.env.doc2path(node.get("refdoc", self.env.docname), base=False)).parent
            folder = (page_dir / target).resolve()
            if not folder.is_dir():
                continue
            if folder.is_relative_to(srcdir):
                # docs/tutorials/ is a copy of tutorials/: name a folder by its place in the repository.
                inside = folder.relative_to(srcdir)
                shown = inside if (root / inside).is_dir() else Path(srcdir.name) / inside
            elif folder.is_relative_to(root):
                shown = folder.relative_to(root)
            else:
                continue
            shown = f"{shown.as_posix()}/"
            node.replace_self(nodes.literal(shown, shown))


def setup(app):
    app.add_post_transform(FolderLinks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
