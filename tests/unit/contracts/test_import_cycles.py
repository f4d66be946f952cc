"""No import circle among rlcoder, reward and rollout modules, counting imports inside functions
(grimp, which import-linter runs on, records every import statement wherever it stands)."""

from __future__ import annotations

import grimp
import networkx as nx


def test_no_import_cycles():
    graph = grimp.build_graph("rlcoder", "reward", "rollout", include_external_packages=False)
    g = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            g.add_edge(module, imported)
    cycles = list(nx.simple_cycles(g, length_bound=8))
    assert not cycles, "import circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:10])
