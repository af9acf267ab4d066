// mqttkit-conformance driver for Eclipse Paho Go (github.com/eclipse/paho.mqtt.golang),
// as Debian packages it (MQTT 3.1.1 only).
//
// Commands arrive as JSON lines on stdin; what the library tells its application goes out
// as JSON lines on stdout (conformance/CLIENT-DRIVERS.md). Every command is answered at
// once; completions come later as events, from the library's goroutines.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Set at build time from the Debian package version.
var libraryVersion = "unknown"

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func emit(message map[string]interface{}) {
	line, err := json.Marshal(message)
	if err != nil {
		return
	}
	out.Lock()
	defer out.Unlock()
	out.w.Write(line)
	out.w.WriteByte('\n')
	out.w.Flush()
}

type command map[string]interface{}

func (c command) str(key string) (string, bool) {
	v, ok := c[key].(string)
	return v, ok
}

func (c command) num(key string) (float64, bool) {
	v, ok := c[key].(float64)
	return v, ok
}

func (c command) flag(key string) (bool, bool) {
	v, ok := c[key].(bool)
	return v, ok
}

func payload(c command) []byte {
	if h, ok := c.str("payload_hex"); ok {
		b, _ := hex.DecodeString(h)
		return b
	}
	p, _ := c.str("payload")
	return []byte(p)
}

type driver struct {
	client mqtt.Client
}

func (d *driver) connect(c command) (string, string) {
	if d.client != nil {
		return "unsupported", "one connect per client (it reconnects by itself)"
	}
	if v, _ := c.str("version"); v != "3.1.1" {
		return "unsupported", "paho.mqtt.golang speaks MQTT 3.1 and 3.1.1 only"
	}
	url, _ := c.str("url")
	opts := mqtt.NewClientOptions()
	opts.AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1))
	opts.SetProtocolVersion(4)
	if id, ok := c.str("client_id"); ok {
		opts.SetClientID(id)
	}
	if clean, ok := c.flag("clean_start"); ok {
		opts.SetCleanSession(clean)
	}
	if ka, ok := c.num("keep_alive"); ok {
		opts.SetKeepAlive(time.Duration(ka) * time.Second)
	}
	if pt, ok := c.num("ping_timeout"); ok {
		opts.SetPingTimeout(time.Duration(pt * float64(time.Second)))
	}
	if user, ok := c.str("username"); ok {
		opts.SetUsername(user)
	}
	if password, ok := c.str("password"); ok {
		opts.SetPassword(password)
	}
	if will, ok := c["will"].(map[string]interface{}); ok {
		w := command(will)
		topic, _ := w.str("topic")
		qos, _ := w.num("qos")
		retain, _ := w.flag("retain")
		opts.SetBinaryWill(topic, payload(w), byte(qos), retain)
	}
	if auto, ok := c.flag("auto_reconnect"); ok {
		opts.SetAutoReconnect(auto)
	}
	opts.SetMaxReconnectInterval(2 * time.Second)
	opts.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		emit(map[string]interface{}{
			"event": "message", "topic": m.Topic(), "qos": m.Qos(), "retain": m.Retained(),
			"dup": m.Duplicate(), "payload_hex": hex.EncodeToString(m.Payload()),
		})
	})
	opts.SetOnConnectHandler(func(mqtt.Client) {
		// This version does not tell its application whether a session was present.
		emit(map[string]interface{}{"event": "connected"})
	})
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		emit(map[string]interface{}{"event": "connection_lost", "reason": err.Error()})
	})
	d.client = mqtt.NewClient(opts)
	token := d.client.Connect()
	go func() {
		token.Wait()
		if err := token.Error(); err != nil {
			message := map[string]interface{}{"event": "connection_lost", "reason": err.Error()}
			if ct, ok := token.(*mqtt.ConnectToken); ok && ct.ReturnCode() != 0 && ct.ReturnCode() < 0x80 {
				message["reason_code"] = ct.ReturnCode()
			}
			emit(message)
		}
	}()
	return "ack", ""
}

// complete reports a token's completion as `event` (or `error`).
func complete(id interface{}, token mqtt.Token, event string, extra func() map[string]interface{}) {
	go func() {
		token.Wait()
		if err := token.Error(); err != nil {
			emit(map[string]interface{}{"event": "error", "id": id, "message": err.Error()})
			return
		}
		message := map[string]interface{}{"event": event, "id": id}
		if extra != nil {
			for k, v := range extra() {
				message[k] = v
			}
		}
		emit(message)
	}()
}

func (d *driver) handle(c command) (string, string) {
	id := c["id"]
	name, _ := c.str("cmd")
	switch name {
	case "plan":
		return "ack", ""
	case "connect":
		return d.connect(c)
	}
	if d.client == nil {
		return "error", "not connected (no connect command yet)"
	}
	switch name {
	case "publish":
		topic, _ := c.str("topic")
		qos, _ := c.num("qos")
		retain, _ := c.flag("retain")
		if props, ok := c["properties"].(map[string]interface{}); ok && len(props) > 0 {
			return "unsupported", "PUBLISH properties need MQTT 5.0"
		}
		token := d.client.Publish(topic, byte(qos), retain, payload(c))
		complete(id, token, "published", nil)
	case "subscribe":
		filters, _ := c["filters"].([]interface{})
		requested := map[string]byte{}
		order := []string{}
		for _, f := range filters {
			entry := command(f.(map[string]interface{}))
			filter, _ := entry.str("filter")
			qos, _ := entry.num("qos")
			requested[filter] = byte(qos)
			order = append(order, filter)
		}
		if len(order) == 0 {
			// SubscribeMultiple with an empty map: what the library does with it.
			token := d.client.SubscribeMultiple(requested, nil)
			complete(id, token, "subscribed", nil)
			return "ack", ""
		}
		var token mqtt.Token
		if len(order) == 1 {
			token = d.client.Subscribe(order[0], requested[order[0]], nil)
		} else {
			token = d.client.SubscribeMultiple(requested, nil)
		}
		complete(id, token, "subscribed", func() map[string]interface{} {
			result := token.(*mqtt.SubscribeToken).Result()
			codes := []int{}
			for _, f := range order {
				codes = append(codes, int(result[f]))
			}
			return map[string]interface{}{"reason_codes": codes}
		})
	case "unsubscribe":
		raw, _ := c["filters"].([]interface{})
		filters := []string{}
		for _, f := range raw {
			filters = append(filters, f.(string))
		}
		token := d.client.Unsubscribe(filters...)
		complete(id, token, "unsubscribed", nil)
	case "disconnect":
		go func() {
			// The library's own examples quiesce 250 ms: with 0 the DISCONNECT it queued
			// is dropped when it closes the connection at once.
			d.client.Disconnect(250)
			emit(map[string]interface{}{"event": "disconnected", "id": id})
		}()
	default:
		return "unsupported", fmt.Sprintf("unknown command %s", name)
	}
	return "ack", ""
}

func main() {
	emit(map[string]interface{}{
		"event": "hello", "library": "paho.mqtt.golang", "library_version": libraryVersion,
		"versions": []string{"3.1.1"}, "capabilities": []string{"disconnect-reason-codes"},
	})
	d := &driver{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<22)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			continue
		}
		if name, _ := c.str("cmd"); name == "quit" {
			break
		}
		kind, why := func() (kind string, why string) {
			defer func() {
				if r := recover(); r != nil {
					kind, why = "error", fmt.Sprintf("panic: %v", r)
				}
			}()
			return d.handle(c)
		}()
		reply := map[string]interface{}{"event": kind, "id": c["id"]}
		if why != "" {
			if kind == "error" {
				reply["message"] = why
			} else {
				reply["reason"] = why
			}
		}
		emit(reply)
	}
	os.Exit(0)
}
