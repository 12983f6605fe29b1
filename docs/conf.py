"""Sphinx configuration of the dba-ref documentation site.

Build (offline; warnings are errors, cross-references nitpicky):

    pip install -e ".[docs]"
    python -m sphinx -E -W --keep-going -n docs docs/_build/html

(-E: from scratch; an incremental build keeps what a directive generated from the package,
such as a --help text, until its page changes.)

or ``bash .ci/docs``, which also installs the headless Chromium that
``tests/test_docs_site.py`` opens the built site with.

The pages are the Markdown files of ``docs/`` (MyST), the committed notebooks of
``tutorials/`` with their outputs (myst-nb, never re-executed here) and an API
reference generated from the package (``_ext/api_reference.py``). Nothing is loaded
from the internet: MathJax comes from the ``sphinx-mathjax-offline`` package and is
copied into the site.
"""
from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import dba_ref  # noqa: E402  (documented version; the package must be installed: pip install -e ".[docs]")

project = "dba-ref"
author = "the dba-ref authors"
copyright = "the dba-ref authors, MIT licence"
release = version = dba_ref.__version__

extensions = [
    "myst_nb",                   # Markdown (MyST) pages and notebooks; loads myst_parser itself
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpy_docstrings",          # napoleon, for the package's NumPy-style docstrings
    "api_reference",             # one page per public module, generated from the package
    "code_refs",                 # `dba_ref/FILE.py:NAME` in a page -> a link to that API entry
    "repository_links",          # the README's links, resolved from where it lives: a page, a download, a folder's path
    "cli_help",                  # `dba-ref ... --help`, as the installed command prints it
    "exercise_tasks",            # the classroom exercises, from their registry and their stubs
    "optimizer_registry",        # the optimizers, from their registry
]

exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "optimizers/README.md",      # shown through optimizers/index.md, which includes it
    "reproduction/table.md",     # generated with docs/reproduction.md, which shows the same tables
    "getting_started/train.md",  # written by docs/scripts/getting_started_output.py, included by a page
]

# --- The tutorials ---------------------------------------------------------------------------------
# Sphinx reads pages from docs/ only, and resolves symbolic links (so a link to ../tutorials would put the
# notebooks outside it): tutorials/ is copied to docs/tutorials/ (ignored by git) before every build, with
# its modification times, so an unchanged notebook is not read again. Links in the copies are resolved from
# the originals (_ext/repository_links.py): docs/<copy> is a copy of <folder of the repository>.
repository_copies = {"tutorials": "tutorials"}
for copy, source in repository_copies.items():
    shutil.rmtree(DOCS / copy, ignore_errors=True)
    shutil.copytree(REPO / source, DOCS / copy, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))


def notebooks_under_tutorials_page(app, docname, source):
    """``source-read``: the tutorials' README is their page; the notebooks are its children in the navigation."""
    if docname == "tutorials/README":
        source[0] += "\n\n```{toctree}\n:hidden:\n:glob:\n\n0*\n```\n"


def setup(app):
    app.connect("source-read", notebooks_under_tutorials_page)

# --- MyST and notebooks --------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 4               # GitHub-style anchors, so `page.md#5-float32-stability` links resolve
nb_execution_mode = "off"              # render the committed outputs; the tests re-execute the notebooks
nb_merge_streams = True

# --- API reference ---------------------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "undoc-members": True,             # every public name, documented or not
    "show-inheritance": True,
    "ignore-module-all": True,         # document a name where it is defined, never again where re-exported
}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True       # `min_size=2`, not the repr of an evaluated default
# The optional framework versions (dba_ref.frameworks) import torch or jax at the top; the docs extra
# installs neither, so autodoc imports them against stand-ins (signatures and docstrings are unaffected).
autodoc_mock_imports = ["torch", "jax", "jaxlib"]

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True               # "Attributes" sections as fields: autodoc documents the attributes too
napoleon_preprocess_types = True

# --- Cross-references ------------------------------------------------------------------------------
# `-n` (nitpicky) reports every reference that does not resolve, so a renamed function fails the build.
# Names inside dba_ref resolve as Python finds them (_ext/api_reference.py); one that Python finds in a
# private module is shown unlinked (private modules have no page). The exceptions, each a rule:
nitpick_ignore_regex = [
    # Python's, NumPy's and the other libraries' names: offline there is no intersphinx to link them.
    ("py:.*", r"(builtins\.)?(int|float|bool|str|bytes|list|tuple|dict|set|frozenset|callable|object|type|slice"
              r"|complex|None|True|False|Ellipsis|Exception|ValueError|TypeError|OSError|KeyError)"),
    ("py:.*", r"(typing|collections|concurrent|pathlib|os|io|argparse|dataclasses|enum|types|numbers|functools"
              r"|contextlib|subprocess)\..*|Path|PathLike|Callable|Iterable|Iterator|Sequence|Mapping|Any|NamedTuple"),
    ("py:.*", r"(np|numpy|numba|scipy|sklearn|torch|nn|F|jax|jnp|lax|matplotlib|plt|threadpoolctl)(\..*)?"
              r"|float16|float32|float64|int64|RandomState|Generator"),
    # The words NumPy-style docstrings use as types.
    ("py:.*", r"array|ndarray|array_like|array-like|sequence|string|scalar|path|file|optional|default.*"),
    # A "type" that is not a dotted name is prose: a shape ``(B, B)``, a condition ``int >= 1``.
    ("py:class", r".*[^\w.].*"),
]

# --- HTML --------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dba-ref {release}"
html_static_path = ["_static"]
html_css_files = ["dba_ref.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "use_edit_page_button": False,
}
html_context = {"default_mode": "light"}
# Pages at the top level have no children: no empty section navigation. The API's index lists its modules
# itself, and its table from the spec to the code needs the width; the module pages keep the navigation.
html_sidebars = {"*": [], "api/index": []}


def _offline_mathjax() -> Path:
    """The folder holding ``mathjax/`` in the installed ``sphinx-mathjax-offline`` (MathJax 3)."""
    try:
        dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError('MathJax is not installed: pip install -e ".[docs]" (it brings sphinx-mathjax-offline)')
    static = Path(dist.locate_file("sphinx-mathjax-offline/static"))
    if not (static / "mathjax" / "tex-chtml.js").is_file():
        raise RuntimeError(f"sphinx-mathjax-offline has no MathJax under {static}; reinstall it")
    return static


# The whole MathJax folder is copied to _static/mathjax: tex-chtml.js loads its fonts and any TeX
# extension it needs from beside itself.
html_static_path.append(str(_offline_mathjax()))
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {"enableMenu": False}}   # the menu offers the speech tools, which load more
