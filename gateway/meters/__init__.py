"""Grid meters: what the site's main fuse carries, read over Modbus or MQTT.

`model` holds the plain types (`MeterSample`, the `Meter` protocol, errors); `modbus`
reads a meter described by a profile in `profiles/`; `mqtt` turns messages on a topic
into samples; `factory` opens the meter a config entry asks for; `payloads` builds the
`{base}/meters/{id}/state` and `{base}/pools/{pool}/grid` messages. The headroom
arithmetic itself is pure core code in `gateway.core.headroom`.
"""
