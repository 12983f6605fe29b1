"""The API reference, generated from the package at every build.

- **One page per public module** (``api/generated/<module>.rst``): every module and
  subpackage of ``dba_ref`` whose dotted name has no part starting with ``_`` gets a
  page with its docstring, a summary table of the functions and classes it defines,
  the names it re-exports, its submodules, then every public name it defines in full
  (autodoc, options in ``conf.py``). The list comes from walking the package, never
  from a hand-written list, so a module that is split or renamed gets its page.
  (autosummary's recursive mode cannot do this here: ``dba_ref.gram`` is both a
  module and, re-exported by ``dba_ref/__init__.py``, a function, and autosummary
  documents the function under the module's name.)
- **Re-exports** (``.. reexports:: dba_ref``): the names of a package's ``__all__``
  defined elsewhere, each linked to where it is documented.
- **Names as Python finds them**: a reference to ``dba_ref.select`` or, inside
  ``dba_ref.backprop``, to ``MLP`` resolves to the entry of the object that name
  denotes (``dba_ref.search.select``, ``dba_ref.model.MLP``). Names outside
  ``dba_ref`` are left to Sphinx (and to ``nitpick_ignore_regex`` in conf.py).
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path

from sphinx.ext.autodoc.mock import ismock, mock
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

from rst_content import parse_rst

PACKAGE = "dba_ref"
OUTPUT = "api/generated"


# --- where a name is defined ---------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def top_level(module) -> list[ast.stmt]:
    """The top-level statements of ``module``'s source ([] for a mock or a module without source).

    Parsed once per module and build (:func:`write_pages` clears the cache); callers must not change the list.
    """
    if ismock(module):
        return []
    try:
        return ast.parse(inspect.getsource(module)).body
    except (OSError, TypeError):
        return []


def assigns(module, name: str) -> bool:
    """Whether ``module``'s source assigns ``name`` at its top level."""
    for node in top_level(module):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def imported_from(module, name: str) -> tuple[str, str] | None:
    """``(module, name)`` that ``module``'s ``from ... import`` statements bind ``name`` to, if any.

    ``from .cases import CASES`` in ``dba_ref.conformance.files`` gives
    ``("dba_ref.conformance.cases", "CASES")``.
    """
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    for node in top_level(module):
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                return source, alias.name
    return None


def is_private(dotted: str) -> bool:
    """Whether a dotted name has a part starting with ``_`` (a private module or name: no API entry)."""
    return any(part.startswith("_") for part in dotted.split("."))


def is_definition(obj) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


def definition(module, name: str) -> tuple[str, str] | None:
    """``(module, name)`` where ``module.<name>`` is defined (None if it cannot be told).

    A function or class says where it was defined (``__module__``); data does not, so
    it is found as Python found it: assigned in ``module``, or imported into it with
    ``from ... import`` from the module that defines it, perhaps under another name
    (``from ..update import NUMPY_KERNELS as KERNELS``).
    """
    obj = getattr(module, name)
    if is_definition(obj):
        where = getattr(obj, "__module__", None)
        return (where, obj.__name__) if where else None
    if assigns(module, name):
        return module.__name__, name
    source = imported_from(module, name)
    if source is None:
        return None
    source_module = importlib.import_module(source[0])
    return definition(source_module, source[1]) if hasattr(source_module, source[1]) else None


def canonical_name(dotted: str) -> str | None:
    """The documented name of the object ``dotted`` denotes (``dba_ref.select`` -> ``dba_ref.search.select``)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    else:
        return None
    name = obj.__name__
    for part in parts[i:]:
        if inspect.isclass(obj) and part in getattr(obj, "__annotations__", {}) and not hasattr(obj, part):
            return f"{name}.{part}"          # a field declared by annotation only (a dataclass field)
        if not hasattr(obj, part):
            return None
        owner, obj = obj, getattr(obj, part)
        if inspect.ismodule(obj):
            name = obj.__name__
        elif is_definition(obj) and getattr(obj, "__module__", None) and "<" not in obj.__qualname__:
            name = f"{obj.__module__}.{obj.__qualname__}"
        elif inspect.ismodule(owner):
            name = ".".join(definition(owner, part) or (owner.__name__, part))
        else:
            name = f"{name}.{part}"
    return name


# --- the pages -------------------------------------------------------------------------------------
#: A cross-reference role in a docstring, ``:class:`AdanState``` or ``:func:`~dba_ref.select```.
ROLE = re.compile(r":(?:[\w-]+:)*[\w-]+:`~?([^`<]*?)\s*(?:<[^>]*>)?`")


def summary(obj) -> str:
    """The first paragraph of a function's or class's docstring, on one line ('' for data).

    Its cross-references become code: a docstring's short names resolve in its own module,
    not on the page that shows the summary.
    """
    if not is_definition(obj):
        return ""
    first = " ".join((inspect.getdoc(obj) or "").strip().split("\n\n")[0].split())
    return ROLE.sub(r"``\1``", first)


def link_table(rows, indent: str = "") -> list[str]:
    """reST lines of a two-column table: ``(shown name, target, summary)`` rows."""
    lines = [f"{indent}.. list-table::", f"{indent}   :widths: 30 70", ""]
    for shown, target, text in rows:
        lines += [f"{indent}   * - :py:obj:`{shown} <{target}>`", f"{indent}     - {text}"]
    return lines


def public_modules(package: str = PACKAGE) -> list[str]:
    """``package`` and every module below it whose dotted name has no part starting with ``_``."""
    root = importlib.import_module(package)
    names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")
                         if not is_private(info.name)]
    return sorted(names)


def defined_here(module) -> list[str]:
    """The public functions and classes that ``module`` defines, in source order."""
    found = [(name, obj) for name, obj in vars(module).items()
             if not name.startswith("_") and is_definition(obj) and getattr(obj, "__module__", None) == module.__name__]
    return [name for name, obj in sorted(found, key=lambda item: _source_line(item[1]))]


def _source_line(obj) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def undocumented_data(module) -> list[str]:
    """Public names ``module`` assigns at top level without a ``#:`` comment or docstring.

    autodoc leaves these out even with ``undoc-members``; the page lists them explicitly,
    so that every public name has an entry.
    """
    documented = {name for (_, name) in ModuleAnalyzer.for_module(module.__name__).find_attr_docs()}
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(obj) and not is_definition(obj)
            and name not in documented and assigns(module, name)]


def short_value(obj) -> bool:
    """Whether ``repr(obj)`` is short and the same in every run (no memory addresses)."""
    text = repr(obj)
    return len(text) <= 80 and " at 0x" not in text


def page(modname: str, all_modules: list[str]) -> str:
    """The reST source of ``modname``'s page."""
    module = importlib.import_module(modname)
    children = [m for m in all_modules if m.rpartition(".")[0] == modname]
    lines = [modname, "=" * len(modname), "",
             f".. automodule:: {modname}", ""]
    members = defined_here(module)
    if members:
        rows = [(name, f"{modname}.{name}", summary(getattr(module, name))) for name in members]
        lines += ["   .. rubric:: Summary", "", *link_table(rows, indent="   "), ""]
    lines += [f"   .. reexports:: {modname}", ""]
    if children:
        lines += ["   .. rubric:: Modules", "", "   .. toctree::", "      :maxdepth: 1", "",
                  *[f"      {child}" for child in children], ""]
    for name in undocumented_data(module):
        lines += [f".. autodata:: {modname}.{name}", *([] if short_value(getattr(module, name)) else
                                                       ["   :no-value:"]), ""]
    return "\n".join(lines)


def write_pages(app) -> None:
    """Write ``api/generated/*.rst``, rewriting only pages whose text changed (incremental builds)."""
    top_level.cache_clear()                          # the sources may have changed since the last build
    out = Path(app.srcdir) / OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    with mock(app.config.autodoc_mock_imports):      # as autodoc imports them (torch, jax may be absent)
        modules = public_modules()
        wanted = {f"{m}.rst": page(m, modules) for m in modules}
    for stale in set(p.name for p in out.glob("*.rst")) - set(wanted):
        (out / stale).unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)


# --- re-exports and name resolution ----------------------------------------------------------------
class ReexportsDirective(SphinxDirective):
    """The names of a package's ``__all__`` that it imports from elsewhere, linked to their entries."""

    required_arguments = 1

    def run(self):
        with mock(self.config.autodoc_mock_imports):
            package = importlib.import_module(self.arguments[0])
        rows = []
        for name in getattr(package, "__all__", []):
            where = definition(package, name)
            if where is None or where[0] == package.__name__:
                continue
            rows.append((name, canonical_name(f"{package.__name__}.{name}"), summary(getattr(package, name))))
        if not rows:
            return []
        lines = [f"Re-exported here (``from {package.__name__} import NAME``); each is documented where it is "
                 "defined:", "", *link_table(rows)]
        return parse_rst(self, lines, f"<reexports of {package.__name__}>")


def resolve_as_python(app, env, node, contnode):
    """``missing-reference``: resolve a ``dba_ref`` name to the entry of the object it denotes.

    A name that denotes an object of a private module (``_validated.Validated`` inside
    ``dba_ref.cli.train`` is ``dba_ref.cli._validated.Validated``) has no entry: it is shown
    as written, unlinked. A name that denotes nothing stays unresolved, and ``-n`` reports it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    context = node.get("py:module")
    for candidate in ([f"{context}.{target}"] if context else []) + [target]:
        if not candidate.startswith(PACKAGE + "."):
            continue
        canonical = canonical_name(candidate)
        if canonical is None:
            continue
        if canonical != candidate:
            resolved = env.domains["py"].resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode)
            if resolved:
                return resolved[0][1]
        if is_private(canonical):
            return contnode
    return None


def skip_foreign_members(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: a method a class gets from another library is documented there.

    ``DBAClassifier`` gets ``set_fit_request`` and the like from scikit-learn's metadata routing;
    their docstrings point into scikit-learn's own documentation.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and inspect.isroutine(obj) and not module.startswith(PACKAGE):
        return True
    return None


#: The docstring Python writes for every field of a NamedTuple.
FIELD_ALIAS = re.compile(r"Alias for field number \d+")


def drop_generated_docstrings(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring``: an attribute without a comment has no docstring, not a generated one.

    autodoc falls back to ``type(obj).__doc__`` (``dict``'s help for a dict constant), and a
    NamedTuple field's docstring is Python's "Alias for field number 0"; the class's own
    docstring says what the fields are.
    """
    own = " ".join("\n".join(lines).split())
    if what in ("data", "attribute") and own and (own == " ".join((inspect.getdoc(type(obj)) or "").split())
                                                   or FIELD_ALIAS.fullmatch(own)):
        lines.clear()


def setup(app):
    app.connect("builder-inited", write_pages)
    app.connect("autodoc-process-docstring", drop_generated_docstrings, priority=400)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("missing-reference", resolve_as_python)
    app.add_directive("reexports", ReexportsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
