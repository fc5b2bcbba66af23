"""Re-vendor the Kubernetes JSON schemas used by ``tests/deploy`` (a maintainer's tool).

The schemas come from the ``kubernetes-validate`` wheel (Apache-2.0), which ships the JSON
schemas generated from the Kubernetes OpenAPI document for each minor version. Only the kinds
the manifests use are kept, and ``_definitions.json`` is pruned to the definitions they reach,
so the repository carries about 200 KB instead of 20 MB::

    pip download --no-deps -d /tmp/kv kubernetes-validate==1.37.0
    unzip -q /tmp/kv/kubernetes_validate-*.whl -d /tmp/kv
    python deploy/schemas/vendor_kubernetes.py \
        /tmp/kv/kubernetes_validate/kubernetes-json-schema/v1.33.0-local-strict
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KINDS = (
    "configmap-v1.json",
    "deployment-apps-v1.json",
    "job-batch-v1.json",
    "namespace-v1.json",
    "poddisruptionbudget-policy-v1.json",
    "secret-v1.json",
    "service-v1.json",
    "serviceaccount-v1.json",
)
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")
OUT = Path(__file__).parent / "kubernetes"


def refs(node: Any) -> set[str]:
    """Every definition name referenced anywhere inside ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        for prefix in PREFIXES:
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref.removeprefix(prefix))
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def main(source: Path) -> None:
    definitions = json.loads((source / "_definitions.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    for kind in KINDS:
        schema = json.loads((source / kind).read_text())
        wanted |= refs(schema)
        (OUT / kind).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    todo = list(wanted)
    while todo:
        name = todo.pop()
        for ref in refs(definitions["$defs"][name]) - wanted:
            wanted.add(ref)
            todo.append(ref)
    pruned = dict(definitions)
    pruned["$defs"] = {name: definitions["$defs"][name] for name in sorted(wanted)}
    (OUT / "_definitions.json").write_text(json.dumps(pruned, indent=1, sort_keys=True) + "\n")
    (OUT / "VERSION").write_text(source.name + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
