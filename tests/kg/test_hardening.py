"""Hostile queries against the policy graph (issue 19)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from rdflib import Graph

from rulealign.errors import GraphError
from rulealign.kg.queries import run_sparql

# -- defect 21: a query never reaches the network -----------------------------------------------


def test_defect21_sparql_service_not_fetched() -> None:
    hits: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # pragma: no cover - reached only by the defect
            hits.append(self.path)
            self.send_response(500)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/sparql"
    try:
        for query in (f"SELECT ?s WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
                      f"SELECT ?s FROM <{url}> WHERE {{ ?s ?p ?o }}",
                      f"SELECT ?s FROM NAMED <{url}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"):
            with pytest.raises(GraphError) as err:
                list(run_sparql(Graph(), query))
            assert err.value.code == "RA207" and url in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert list(run_sparql(Graph(), "SELECT ?s WHERE { ?s ?p ?o }")) == []
