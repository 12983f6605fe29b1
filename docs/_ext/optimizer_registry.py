"""``.. optimizer-registry::``: every optimizer of ``dba_ref.optimizers.OPTIMIZERS`` in a table.

One row per registry entry: its name, linked to the page ``optimizers/<name>.md``
where one exists, the registry's own one-line description (method and source), and
the function that builds it, linked to the API. The table follows the registry, so
a new optimizer appears without editing a page.
"""
from __future__ import annotations

from pathlib import Path

from sphinx.util.docutils import SphinxDirective

from rst_content import parse_rst


class OptimizerRegistryDirective(SphinxDirective):
    def run(self):
        from dba_ref.optimizers import OPTIMIZERS

        pages = Path(self.env.srcdir) / "optimizers"
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 18 62 20", "",
                 "   * - name", "     - method and source (the registry's description)", "     - built by"]
        for name, (factory, description) in OPTIMIZERS.items():
            shown = f":doc:`{name} </optimizers/{name}>`" if (pages / f"{name}.md").is_file() else f"``{name}``"
            lines += [f"   * - {shown}", f"     - {description}",
                      f"     - :py:func:`{factory.__module__}.{factory.__qualname__}`"]
        return parse_rst(self, lines, "<optimizer-registry>")


def setup(app):
    app.add_directive("optimizer-registry", OptimizerRegistryDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
