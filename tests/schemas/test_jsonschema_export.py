"""``python -m coinstream.schemas export-jsonschema DIR`` writes one schema per public event."""

import json
import subprocess
import sys
from pathlib import Path


def test_export_command_writes_every_public_schema(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coinstream.schemas", "export-jsonschema", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{n}.schema.json"
        for n in (
            "RawEnvelope",
            "PriceEvent",
            "SentimentEvent",
            "AssetMetadataEvent",
            "CandleEvent",
            "FeedStatusEvent",
            "ServiceHealthEvent",
            "AlertEvent",
            "DeadLetterHeaders",
            "DeadLetterBoundedValue",
        )
    )
    price = json.loads((tmp_path / "PriceEvent.schema.json").read_text())
    assert price["properties"]["price"]["anyOf"][0]["type"] == "string"
    assert "event_id" in price["required"]
    assert len(out.stdout.splitlines()) == 10
