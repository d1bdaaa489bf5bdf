//go:build linux

package pluginse2e

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// mqttRoute is a stream route on port with mqtt-proxy at level and the
// given upstream member ("upstream":{…} or "upstream_id":"…").
func mqttRoute(port, level int, upstream string) string {
	return fmt.Sprintf(`{"server_port":%d,"plugins":{"mqtt-proxy":{"protocol_level":%d}},%s}`, port, level, upstream)
}

// TestMQTTProxy: real mosquitto_pub and mosquitto_sub, MQTT 3.1.1 and 5,
// through mqtt-proxy routes to a real broker; a CONNECT of the wrong
// level and bytes that are no MQTT are closed before the broker sees a
// connection (apisix/stream/plugins/mqtt-proxy.lua returns 503).
func TestMQTTProxy(t *testing.T) {
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	b := startBroker(t)
	g := startGateway(t, 2)
	up := `"upstream":{"type":"roundrobin","nodes":{"` + b.addr() + `":1}}`
	g.must(t, "PUT", "/apisix/admin/stream_routes/v311", mqttRoute(g.ports[0], 4, up))
	g.must(t, "PUT", "/apisix/admin/stream_routes/v5", mqttRoute(g.ports[1], 5, up))

	for _, tt := range []struct {
		version string
		port    int
	}{
		{"mqttv311", g.ports[0]},
		{"mqttv5", g.ports[1]},
	} {
		t.Run(tt.version, func(t *testing.T) {
			topic := "e2e/" + tt.version
			sub := subscribe(t, b, tt.port, tt.version, "sub-"+tt.version, topic, 2)
			for i, args := range [][]string{
				{"-i", "pub-" + tt.version},
				// a CONNECT with a will, a user name and a password
				{"-i", "will-" + tt.version, "-u", "bob", "-P", "secret", "--will-topic", "w", "--will-payload", "bye"},
			} {
				args = append([]string{"-V", tt.version, "-t", topic, "-m", fmt.Sprintf("hello %d", i)}, args...)
				if out, err := mqttRun(t, pub, tt.port, args...); err != nil {
					t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
				}
			}
			if msgs := sub.messages(t); len(msgs) != 2 || msgs[0] != "hello 0" || msgs[1] != "hello 1" {
				t.Errorf("subscriber got %q", msgs)
			}
			for _, id := range []string{"sub-", "pub-", "will-"} {
				if n := b.connected(id + tt.version); n != 1 {
					t.Errorf("broker saw %s%s connect %d times, want 1", id, tt.version, n)
				}
			}
		})
	}

	t.Run("wrong level", func(t *testing.T) {
		// an MQTT 5 CONNECT on the level-4 route, and 3.1.1 on level 5
		for _, tt := range []struct {
			version, id string
			port        int
		}{{"mqttv5", "five-on-four", g.ports[0]}, {"mqttv311", "four-on-five", g.ports[1]}} {
			out, err := mqttRun(t, pub, tt.port, "-V", tt.version, "-i", tt.id, "-t", "x", "-m", "refused")
			if err == nil {
				t.Errorf("mosquitto_pub %s on the wrong level succeeded:\n%s", tt.id, out)
			}
			if n := b.connected(tt.id); n != 0 {
				t.Errorf("broker saw %s connect %d times", tt.id, n)
			}
		}
	})

	t.Run("not mqtt", func(t *testing.T) {
		before := b.connections()
		for _, junk := range []string{"mmm\n\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x30\x05\x00\x01tab"} {
			c, err := net.Dial("tcp", e2e.HostPort("127.0.0.1", g.ports[0]))
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write([]byte(junk)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(make([]byte, 64))
			if n != 0 || err != io.EOF {
				t.Errorf("%q: read %d bytes, %v; want a silent close", junk, n, err)
			}
			c.Close()
		}
		if after := b.connections(); after != before {
			t.Errorf("the broker got %d connections from refused sessions", after-before)
		}
	})
}

// TestMQTTChashOnClientID: a chash upstream with `key: mqtt_client_id`
// over two real brokers. Every client id lands on one broker, whichever
// route (3.1.1 or 5) and however many times it connects, and the ids
// spread over both brokers.
func TestMQTTChashOnClientID(t *testing.T) {
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	b1, b2 := startBroker(t), startBroker(t)
	g := startGateway(t, 2)
	g.must(t, "PUT", "/apisix/admin/upstreams/brokers",
		`{"type":"chash","key":"mqtt_client_id","nodes":{"`+b1.addr()+`":1,"`+b2.addr()+`":1}}`)
	g.must(t, "PUT", "/apisix/admin/stream_routes/v311", mqttRoute(g.ports[0], 4, `"upstream_id":"brokers"`))
	g.must(t, "PUT", "/apisix/admin/stream_routes/v5", mqttRoute(g.ports[1], 5, `"upstream_id":"brokers"`))

	const ids = 12
	for i := range ids {
		id := fmt.Sprintf("device-%02d", i)
		for _, via := range []struct {
			version string
			port    int
		}{{"mqttv311", g.ports[0]}, {"mqttv5", g.ports[1]}, {"mqttv311", g.ports[0]}} {
			if out, err := mqttRun(t, pub, via.port, "-V", via.version, "-i", id, "-t", "t", "-m", "m"); err != nil {
				t.Fatalf("mosquitto_pub -i %s %s: %v\n%s", id, via.version, err, out)
			}
		}
	}
	on1 := 0
	for i := range ids {
		id := fmt.Sprintf("device-%02d", i)
		n1, n2 := connectedOn(b1, b2, id, 3)
		if n1+n2 != 3 || n1 != 0 && n2 != 0 {
			t.Errorf("%s connected %d times to broker 1 and %d to broker 2: want 3 on one", id, n1, n2)
		}
		if n1 > 0 {
			on1++
		}
	}
	if on1 == 0 || on1 == ids {
		t.Errorf("all %d client ids on one broker (%d on broker 1)", ids, on1)
	}
}

// TestMQTTProxyInOwnLayer4Server: the same mqtt-proxy route served by a
// layer4 server of the user's own (layer4.handlers.apisix): a real
// mosquitto_pub gets through, an MQTT 5 CONNECT on the level-4 route does
// not, and chash on the client id holds there too.
func TestMQTTProxyInOwnLayer4Server(t *testing.T) {
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	b1, b2 := startBroker(t), startBroker(t)
	g := startGatewayWith(t, gatewayOpts{layer4: 1})
	g.must(t, "PUT", "/apisix/admin/upstreams/brokers",
		`{"type":"chash","key":"mqtt_client_id","nodes":{"`+b1.addr()+`":1,"`+b2.addr()+`":1}}`)
	g.must(t, "PUT", "/apisix/admin/stream_routes/own", mqttRoute(g.l4Ports[0], 4, `"upstream_id":"brokers"`))
	port := g.l4Ports[0]
	for i := range 6 {
		id := fmt.Sprintf("l4-%d", i)
		for range 2 {
			if out, err := mqttRun(t, pub, port, "-V", "mqttv311", "-i", id, "-t", "t", "-m", "m"); err != nil {
				t.Fatalf("mosquitto_pub -i %s: %v\n%s", id, err, out)
			}
		}
		if n1, n2 := connectedOn(b1, b2, id, 2); n1+n2 != 2 || n1 != 0 && n2 != 0 {
			t.Errorf("%s connected %d times to broker 1 and %d to broker 2: want 2 on one", id, n1, n2)
		}
	}
	if out, err := mqttRun(t, pub, port, "-V", "mqttv5", "-i", "l4-five", "-t", "t", "-m", "m"); err == nil {
		t.Errorf("MQTT 5 on the level-4 route got through:\n%s", out)
	}
	if n := b1.connected("l4-five") + b2.connected("l4-five"); n != 0 {
		t.Errorf("a broker saw the refused client %d times", n)
	}
}
