"""The C core's layering, read from its ``#include "..."`` lines.

native/README.md draws the rooms: the payload parsers stand on events.h and
text.h only, below the packet path, so they cannot call back into flows,
streams or the reader. These tests keep it so: no include cycle among the
private files, and no parser including a packet-path header.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from paths import ROOT

from appliance import native

SRC = ROOT / "native" / "src"
INCLUDE = ROOT / "native" / "include"

# The payload parsers and the headers of the layers above them.
PARSERS = ("dns.c", "tls.c", "hello.c", "http.c", "quic.c", "dhcp.c")
ABOVE_PARSERS = frozenset({"engine.h", "flow.h", "reader.h", "dispatch.h", "pcapng_route.h"})

_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def quoted_includes(path: Path) -> list[str]:
    """Returns the names in a C file's ``#include "..."`` lines, in order.

    Args:
        path: a .c or .h file.
    Returns:
        The included names as written (``"events.h"`` gives ``events.h``).
    """
    return _INCLUDE_RE.findall(path.read_text(encoding="utf-8"))


def include_graph(src: Path = SRC) -> dict[str, list[str]]:
    """Returns the include graph of the private sources: file name -> the local files it includes.

    Args:
        src: the folder of the ``*.c`` and ``*.h`` files.
    Returns:
        Every file of ``src`` mapped to the included names found in ``src``
        (public headers of native/include/ are leaves and left out).
    """
    files = {p.name: p for p in sorted(src.glob("*.[ch]"))}
    return {name: [i for i in quoted_includes(p) if i in files] for name, p in files.items()}


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Returns one include cycle of graph as a path (first name repeated at the end), or None.

    Args:
        graph: file name -> names it includes.
    Returns:
        ``["a.h", "b.h", "a.h"]`` for a cycle a -> b -> a; None when there is none.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    """Returns every file that start includes, directly or through other headers.

    Args:
        graph: file name -> names it includes.
        start: a file name of graph.
    Returns:
        The set of names reached (start itself only if a cycle leads back).
    """
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(graph.get(n, ()))
    return seen


def test_the_private_sources_have_no_include_cycle():
    """No chain of #include lines among native/src leads back to where it started."""
    graph = include_graph()
    assert "events.h" in graph and "dns.c" in graph, "native/src is not where this test looks"
    assert find_cycle(graph) is None, f"include cycle: {' -> '.join(find_cycle(graph))}"


@pytest.mark.parametrize("parser", PARSERS)
def test_a_parser_includes_nothing_of_the_packet_path(parser):
    """A payload parser reaches events.h and text.h, never engine.h, flow.h, reader.h or dispatch.h."""
    graph = include_graph()
    assert parser in graph
    bad = reachable(graph, parser) & ABOVE_PARSERS
    assert not bad, f"{parser} includes (directly or not) {sorted(bad)}"


def test_the_pcapng_router_stands_beside_the_packet_path():
    """pcapng_route.c (libpcap handles per interface) reaches the floor only, never the packet path above it."""
    graph = include_graph()
    assert "pcapng_route.c" in graph
    assert reachable(graph, "pcapng_route.c") <= {"pcapng_route.h", "internal.h", "pc_alloc.h"}


def test_the_public_headers_include_no_private_one():
    """native/include/ is the documented API: it names nothing of native/src."""
    private = {p.name for p in SRC.glob("*.h")}
    for h in sorted(INCLUDE.glob("*.h")):
        assert not set(quoted_includes(h)) & private, h.name


def test_the_checks_fail_on_a_bad_layout(tmp_path):
    """A parser that includes the engine's header, or two headers that include each other, is caught."""
    (tmp_path / "events.h").write_text('#include "internal.h"\n')
    (tmp_path / "engine.h").write_text('#include "events.h"\n')
    (tmp_path / "dns.c").write_text('#include "parsers.h"\n')
    (tmp_path / "parsers.h").write_text('#include "events.h"\n#include "engine.h"\n')
    graph = include_graph(tmp_path)
    assert find_cycle(graph) is None
    assert reachable(graph, "dns.c") & ABOVE_PARSERS == {"engine.h"}
    (tmp_path / "events.h").write_text('#include "parsers.h"\n')
    cycle = find_cycle(include_graph(tmp_path))
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"events.h", "parsers.h"}


def test_every_event_kind_has_one_name_from_the_core():
    """Each PC_EV_* constant has a distinct name in native.KINDS, read from the core's pc_kind_name table."""
    ids = {getattr(native.lib, n) for n in dir(native.lib)
           if n.startswith("PC_EV_") and n != "PC_EV_KIND_MAX"}
    assert set(native.KINDS) == ids
    assert len(set(native.KINDS.values())) == len(ids) and "" not in native.KINDS.values()
    assert native.ffi.string(native.lib.pc_kind_name(native.lib.PC_EV_DNS_QUERY)) == b"dns.query"
    assert native.lib.pc_kind_name(native.lib.PC_EV_KIND_MAX + 1) == native.ffi.NULL
