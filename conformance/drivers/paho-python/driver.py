#!/usr/bin/env python3
"""mqttkit-conformance driver for Eclipse Paho Python (paho-mqtt 2.x).

Reads commands (JSON lines) on stdin, drives one paho `Client`, and reports what the
library tells its application on stdout (conformance/CLIENT-DRIVERS.md). Every command
is answered at once; completions come as events from paho's network thread.
"""
import json
import os
import sys
import threading
from importlib.metadata import version as package_version

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

OUT = threading.Lock()


def emit(message):
    line = json.dumps(message, ensure_ascii=False)
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# snake_case property names (the runner's) <-> paho's attribute names.
ATTRIBUTE = {name.lower().replace(" ", "_"): name.replace(" ", "") for name in Properties(PacketTypes.PUBLISH).names}
BINARY = {"correlation_data", "authentication_data"}
# A 3.1.1 CONNACK return code, from the 5.0 reason code paho turns it into.
V3_RETURN_CODE = {0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5}


def properties(packet_type, values):
    """paho Properties from the runner's {name: value} (None if empty)."""
    if not values:
        return None
    props = Properties(packet_type)
    for name, value in values.items():
        if name == "user_property":
            value = [tuple(pair) for pair in value]
        elif name in BINARY:
            value = bytes.fromhex(value)
        setattr(props, ATTRIBUTE[name], value)
    return props


def describe_properties(props):
    out = {}
    if props is None:
        return out
    for name, attribute in ATTRIBUTE.items():
        if not hasattr(props, attribute):
            continue
        value = getattr(props, attribute)
        if name == "user_property":
            value = [list(pair) for pair in value]
        elif name == "subscription_identifier":
            value = list(value) if isinstance(value, list) else [value]
        elif isinstance(value, (bytes, bytearray)):
            value = value.hex()
        out[name] = value
    return out


def payload_of(command):
    if "payload_hex" in command:
        return bytes.fromhex(command["payload_hex"])
    return command.get("payload", "").encode("utf-8")


def code_value(code):
    return code.value if isinstance(code, ReasonCode) else int(code)


class Driver:
    def __init__(self):
        self.client = None
        self.v5 = False
        self.lock = threading.RLock()
        self.pending = {}  # mid -> command id
        self.early = {}  # mid -> completion that came before the mid was known
        self.disconnect_id = None

    # -- completions keyed by paho's message id ----------------------------------------
    def complete(self, mid, message):
        with self.lock:
            command_id = self.pending.pop(mid, None)
            if command_id is None:
                self.early[mid] = message
                return
        message["id"] = command_id
        emit(message)

    def track(self, mid, command_id):
        with self.lock:
            early = self.early.pop(mid, None)
            if early is None:
                self.pending[mid] = command_id
                return
        early["id"] = command_id
        emit(early)

    # -- paho callbacks (network thread) -----------------------------------------------
    def on_connect(self, client, userdata, flags, reason_code, props):
        if reason_code.is_failure:
            code = code_value(reason_code)
            if not self.v5:
                code = V3_RETURN_CODE.get(code, code)
            emit({"event": "connection_lost", "reason": f"refused: {reason_code}", "reason_code": code})
            return
        assigned = getattr(props, "AssignedClientIdentifier", None) if props is not None else None
        emit({"event": "connected", "session_present": bool(flags.session_present), "assigned_client_id": assigned})

    def on_disconnect(self, client, userdata, flags, reason_code, props):
        if self.disconnect_id is not None:
            emit({"event": "disconnected", "id": self.disconnect_id})
            self.disconnect_id = None
            return
        message = {"event": "connection_lost", "reason": str(reason_code)}
        if flags.is_disconnect_packet_from_server:
            message["reason_code"] = code_value(reason_code)
        emit(message)

    def on_message(self, client, userdata, msg):
        emit({
            "event": "message",
            "topic": msg.topic,
            "qos": msg.qos,
            "retain": bool(msg.retain),
            "dup": bool(msg.dup),
            "payload_hex": bytes(msg.payload).hex(),
            "properties": describe_properties(getattr(msg, "properties", None)),
        })

    def on_publish(self, client, userdata, mid, reason_code, props):
        if reason_code.is_failure:
            self.complete(mid, {"event": "error", "message": f"publish refused: {reason_code}"})
        else:
            self.complete(mid, {"event": "published", "reason_code": code_value(reason_code)})

    def on_subscribe(self, client, userdata, mid, codes, props):
        self.complete(mid, {"event": "subscribed", "reason_codes": [code_value(c) for c in codes]})

    def on_unsubscribe(self, client, userdata, mid, codes, props):
        self.complete(mid, {"event": "unsubscribed", "reason_codes": [code_value(c) for c in codes]})

    # -- commands (main thread) --------------------------------------------------------
    def connect(self, command):
        if self.client is not None:
            return "unsupported", "one connect per client (paho reconnects by itself)"
        self.v5 = command.get("version") == "5.0"
        protocol = mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311
        clean = command.get("clean_start")
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=command.get("client_id", ""),
            clean_session=None if self.v5 else clean,
            protocol=protocol,
            reconnect_on_failure=command.get("auto_reconnect", True),
        )
        client.reconnect_delay_set(1, 2)
        if "username" in command:
            client.username_pw_set(command["username"], command.get("password"))
        will = command.get("will")
        if will:
            will_props = properties(PacketTypes.WILLMESSAGE, will.get("properties")) if self.v5 else None
            client.will_set(will["topic"], payload_of(will), will.get("qos", 0), will.get("retain", False), will_props)
        connect_props = None
        if self.v5:
            values = dict(command.get("properties") or {})
            for key, name in (("session_expiry", "session_expiry_interval"), ("receive_maximum", "receive_maximum"),
                              ("maximum_packet_size", "maximum_packet_size"),
                              ("topic_alias_maximum", "topic_alias_maximum")):
                if key in command:
                    values[name] = command[key]
            connect_props = properties(PacketTypes.CONNECT, values)
        for name in ("on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe", "on_unsubscribe"):
            setattr(client, name, getattr(self, name))
        host, port = command["url"].split("://", 1)[1].rsplit(":", 1)
        kwargs = {"keepalive": command.get("keep_alive", 60)}
        if self.v5:
            kwargs["clean_start"] = mqtt.MQTT_CLEAN_START_FIRST_ONLY if clean is None else clean
            kwargs["properties"] = connect_props
        client.connect_async(host, int(port), **kwargs)
        self.client = client
        client.loop_start()
        return "ack", None

    def publish(self, command, command_id):
        props = properties(PacketTypes.PUBLISH, command.get("properties")) if self.v5 else None
        with self.lock:
            info = self.client.publish(command["topic"], payload_of(command), command.get("qos", 0),
                                       command.get("retain", False), props)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_QUEUE_SIZE):
                return "error", mqtt.error_string(info.rc)
            self.track(info.mid, command_id)
        return "ack", None

    def subscribe(self, command, command_id):
        entries = []
        for f in command["filters"]:
            if self.v5:
                options = SubscribeOptions(qos=f.get("qos", 0), noLocal=f.get("no_local", False),
                                           retainAsPublished=f.get("retain_as_published", False),
                                           retainHandling=f.get("retain_handling", 0))
                entries.append((f["filter"], options))
            else:
                entries.append((f["filter"], f.get("qos", 0)))
        props = properties(PacketTypes.SUBSCRIBE, command.get("properties")) if self.v5 else None
        with self.lock:
            rc, mid = self.client.subscribe(entries, properties=props) if self.v5 else self.client.subscribe(entries)
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                return "error", mqtt.error_string(rc)
            self.track(mid, command_id)
        return "ack", None

    def unsubscribe(self, command, command_id):
        props = properties(PacketTypes.UNSUBSCRIBE, command.get("properties")) if self.v5 else None
        with self.lock:
            if self.v5:
                rc, mid = self.client.unsubscribe(command["filters"], properties=props)
            else:
                rc, mid = self.client.unsubscribe(command["filters"])
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                return "error", mqtt.error_string(rc)
            self.track(mid, command_id)
        return "ack", None

    def disconnect(self, command, command_id):
        self.disconnect_id = command_id
        if self.v5:
            code = ReasonCode(PacketTypes.DISCONNECT, identifier=command.get("reason_code", 0))
            props = properties(PacketTypes.DISCONNECT, command.get("properties"))
            rc = self.client.disconnect(code, props)
        else:
            rc = self.client.disconnect()
        # MQTT_ERR_NO_CONN here can mean the network thread closed the socket right after
        # writing the DISCONNECT: what went out is checked on the wire.
        if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.disconnect_id = None
            return "error", mqtt.error_string(rc)
        return "ack", None

    def handle(self, command):
        name = command.get("cmd")
        command_id = command.get("id")
        if name == "plan":
            return "ack", None
        if name == "connect":
            return self.connect(command)
        if name in ("publish", "subscribe", "unsubscribe", "disconnect"):
            if self.client is None:
                return "error", "not connected (no connect command yet)"
            return getattr(self, name)(command, command_id)
        return "unsupported", f"unknown command {name}"


def main():
    emit({
        "event": "hello",
        "library": "paho-mqtt (Python)",
        "library_version": package_version("paho-mqtt"),
        "versions": ["3.1.1", "5.0"],
        "capabilities": ["disconnect-reason-codes"],
    })
    driver = Driver()
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            break
        try:
            kind, why = driver.handle(command)
        except (ValueError, TypeError, KeyError) as e:
            kind, why = "error", f"{type(e).__name__}: {e}"
        reply = {"event": kind, "id": command.get("id")}
        if why:
            reply["message" if kind == "error" else "reason"] = why
        emit(reply)
    # The run is over: no DISCONNECT, just go (paho's thread must not keep us alive).
    os._exit(0)


if __name__ == "__main__":
    main()
