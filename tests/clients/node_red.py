"""A real Node-RED process for tests: the example flow, headless, against a test broker.

The flow file is the shipped example with only what a user edits changed: the
broker node's host and port. Its debug nodes become file nodes that append each
message as a JSON line, so a test reads what the flow would show in the sidebar.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.clients.process import stop_process

SETTINGS = """\
module.exports = {{
    flowFile: "flows.json",
    userDir: {user_dir},
    uiHost: "127.0.0.1",
    uiPort: {port},
    credentialSecret: false,
    disableEditor: true,
    logging: {{ console: {{ level: "info", metrics: false, audit: false }} }}
}};
"""


def adapt_flow(
    flow: list[dict[str, Any]], host: str, port: int, out_dir: Path, **inject_repeat: str
) -> list[dict[str, Any]]:
    """The example flow for a test: broker host/port set, debug nodes writing files.

    `inject_repeat` maps an inject node's id to a shorter repeat interval (seconds).
    """
    adapted = []
    for node in flow:
        node = dict(node)
        if node["type"] == "mqtt-broker":
            node["broker"], node["port"] = host, str(port)
        elif node["type"] == "debug":
            node = {
                "id": node["id"], "type": "file", "z": node["z"], "name": node["name"],
                "filename": str(out_dir / f"{node['id']}.jsonl"), "filenameType": "str",
                "appendNewline": True, "createDir": True, "overwriteFile": "false",
                "encoding": "none", "x": node["x"], "y": node["y"], "wires": [],
            }
        elif node["type"] == "inject" and node["id"] in inject_repeat:
            node["repeat"] = inject_repeat[node["id"]]
        adapted.append(node)
    return adapted


@dataclass
class NodeRed:
    """One headless Node-RED with its own user directory."""

    install: Path
    user_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.user_dir / "node-red.log"

    def start(self, flow: list[dict[str, Any]], timeout: float = 60) -> None:
        self.user_dir.mkdir(parents=True, exist_ok=True)
        (self.user_dir / "flows.json").write_text(json.dumps(flow, indent=1))
        settings = self.user_dir / "settings.js"
        settings.write_text(SETTINGS.format(user_dir=json.dumps(str(self.user_dir)),
                                            port=self.port))
        red = self.install / "node_modules" / "node-red" / "red.js"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["node", str(red), "--settings", str(settings), "--userDir", str(self.user_dir)],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node-red exited: {self.text()[-2000:]}")
            if "Started flows" in self.text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"node-red did not start flows in {timeout} s: {self.text()[-2000:]}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 15)
            self.process = None


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a file node wrote so far (a half-written last line is skipped)."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines
