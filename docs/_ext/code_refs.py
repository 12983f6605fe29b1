"""Turn inline code of the form ```dba_ref/FILE.py:NAME``` into a link to NAME's API entry.

The specification names the function that computes each equation as, e.g.,
```dba_ref/gram.py:gram``` or ```dba_ref/optimizers/dba.py:dba```. In the site that
inline code becomes a link to ``dba_ref.gram.gram`` (``dba_ref.optimizers.dba.dba``) in
the API reference; a package's ``__init__.py`` stands for the package itself
(```dba_ref/optimizers/__init__.py:make_optimizer``` -> ``dba_ref.optimizers.make_optimizer``).
NAME may be dotted (``Class.method``).

A reference whose module or name does not exist is reported as a warning (an error
under ``-W``), so renaming a function without updating the pages fails the build;
so is one to a private module or name (a part starting with ``_``), which has no
API entry; one that exists but has no entry for another reason is reported by
Sphinx as an unresolved reference.
"""
from __future__ import annotations

import importlib
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

from api_reference import is_private

logger = logging.getLogger(__name__)

#: ``dba_ref/<path>.py:<name>``, the whole of an inline literal.
CODE_REF = re.compile(r"^(?P<path>dba_ref(?:/[A-Za-z_][A-Za-z0-9_]*)*)\.py:(?P<name>[A-Za-z_][A-Za-z0-9_.]*)$")


def target_of(path: str, name: str) -> tuple[str, str]:
    """``("dba_ref/gram", "gram")`` -> ``("dba_ref.gram", "dba_ref.gram.gram")``, the module and the target;
    ``__init__`` stands for its package."""
    module = path.replace("/", ".").removesuffix(".__init__")
    return module, f"{module}.{name}"


def missing_part(target: str, module: str) -> str | None:
    """Why ``target`` (in ``module``) has no API entry to link to, or None when it can have one."""
    if is_private(target):
        return f"{target} is private (a part starts with '_'), and the API reference documents public names only"
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        return f"no module {module} ({exc})"
    for part in target[len(module) + 1:].split("."):
        if not hasattr(obj, part):
            return f"{obj.__name__ if hasattr(obj, '__name__') else module} has no attribute {part!r}"
        obj = getattr(obj, part)
    return None


class CodeRefTransform(SphinxTransform):
    """Wrap every matching inline literal in a pending cross-reference to the Python object."""

    default_priority = 200   # after MyST has produced its literals, before references are resolved

    def apply(self, **kwargs) -> None:
        for literal in list(self.document.findall(nodes.literal)):
            if isinstance(literal.parent, (nodes.reference, addnodes.pending_xref)):
                continue
            match = CODE_REF.match(literal.astext())
            if not match:
                continue
            module, target = target_of(match["path"], match["name"])
            problem = missing_part(target, module)
            if problem:
                logger.warning("code reference `%s` has no API entry to link to: %s", literal.astext(), problem,
                               location=literal, type="code_refs", subtype="missing")
                continue
            xref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=target,
                                         refexplicit=True, refwarn=True, refdoc=self.env.docname)
            literal.replace_self(xref)
            xref += literal


def setup(app):
    app.add_transform(CodeRefTransform)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
