"""A real Home Assistant process for tests: started headless, onboarded, MQTT added.

Everything goes through Home Assistant's public REST API, as a person's browser
would: onboarding creates the owner (`/api/onboarding/users`), the auth code is
exchanged for a token (`/auth/token`), and the MQTT integration is added through
the config-flow endpoints pointing at the test broker.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.clients.process import stop_process

CONFIGURATION = """\
homeassistant:
  name: ev-gateway test
  latitude: 52.5
  longitude: 13.4
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: DE
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
onboarding:
config:
logger:
  default: warning
"""


class HomeAssistantError(RuntimeError):
    """Home Assistant did not start or refused a REST call."""


@dataclass
class HomeAssistant:
    """One `hass` process on a free port with its own config directory."""

    venv: Path
    config_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.config_dir / "hass.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "hass"), "-c", str(self.config_dir), "--skip-pip"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HomeAssistantError(f"hass exited: {self.log.read_text()[-2000:]}")
            try:
                self.request("GET", "/api/onboarding", auth=False)
                return
            except (OSError, HomeAssistantError):
                time.sleep(0.2)
        tail = self.log.read_text()[-2000:]
        raise HomeAssistantError(f"hass did not answer in {timeout} s: {tail}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 30)
            self.process = None

    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, form: bool = False
    ) -> Any:
        """One REST call; the decoded JSON answer."""
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as exc:
            raise HomeAssistantError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(text) if text else None

    def onboard(self) -> None:
        """Create the owner and get an access token, as the onboarding page does."""
        client_id = self.url + "/"
        user = self.request(
            "POST",
            "/api/onboarding/users",
            {"client_id": client_id, "name": "Test", "username": "test",
             "password": "test-pass-123", "language": "en"},
            auth=False,
        )
        tokens = self.request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": user["auth_code"], "client_id": client_id},
            auth=False,
            form=True,
        )
        self.token = tokens["access_token"]

    def add_mqtt(self, host: str, port: int) -> dict[str, Any]:
        """Add the MQTT integration through the config flow; the created entry."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        if flow.get("step_id") != "broker":
            raise HomeAssistantError(f"unexpected MQTT config flow: {flow}")
        done = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": host, "port": port},
        )
        if done.get("type") != "create_entry":
            raise HomeAssistantError(f"MQTT integration not added: {done}")
        return dict(done["result"])

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.request("GET", "/api/states")}

    def call(self, domain: str, service: str, data: dict[str, Any]) -> Any:
        return self.request("POST", f"/api/services/{domain}/{service}", data)

    def wait_for(self, entity_id: str, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        """Poll an entity's state until predicate(state dict) holds."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = self.states().get(entity_id)
            if last is not None and predicate(last):
                return dict(last)
            time.sleep(0.3)
        raise AssertionError(f"{entity_id} never matched in {timeout} s; last: {last}")
