//go:build linux

package pluginse2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// echoBackend is a TCP server that echoes what it reads.
func echoBackend(t *testing.T) string {
	return e2e.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// session opens one connection (network "tcp" or "udp") to the
// gateway's port, sends "ping", reads the echo and closes. It returns the
// client's local port.
func sessionOver(t *testing.T, network string, port int) int {
	t.Helper()
	c, err := net.Dial(network, e2e.HostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	_, p, _ := net.SplitHostPort(c.LocalAddr().String())
	local, _ := strconv.Atoi(p)
	return local
}

// session is sessionOver TCP.
func session(t *testing.T, port int) int { return sessionOver(t, "tcp", port) }

// syslogRoute is a stream route on port to backend with the syslog
// plugin conf.
func syslogRoute(port int, backend, conf string) string {
	return fmt.Sprintf(`{"server_port":%d,"plugins":{"syslog":%s},"upstream":{"type":"roundrobin","nodes":{"%s":1}}}`,
		port, conf, backend)
}

// sameEntry compares an entry with the wanted one, every key.
func sameEntry(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s: entry\n got %s\nwant %s", what, g, w)
	}
}

// TestSyslogPlugin: the syslog plugin on stream routes, received by a
// real rsyslogd over UDP and TCP and checked field by field; the
// log_format from the conf, then from plugin_metadata/syslog; none at all
// gives APISIX's error and sends nothing.
func TestSyslogPlugin(t *testing.T) {
	rs := startRsyslog(t)
	backend := echoBackend(t)
	g := startGateway(t, 3)
	format := `{"client_ip":"$remote_addr","client_port":"$remote_port","server_port":"$server_port","status":"$status",` +
		`"upstream":"$upstream_addr","sent":"$bytes_sent","received":"$bytes_received","proto":"$protocol","app":"e2e",` +
		`"nested":{"route":"$route_id"}}`

	for i, tt := range []struct {
		network, input string
		port           int
	}{
		{"udp", "imudp", rs.UDP},
		{"tcp", "imtcp", rs.TCP},
	} {
		t.Run(tt.network, func(t *testing.T) {
			id := "r-" + tt.network
			g.must(t, "PUT", "/apisix/admin/stream_routes/"+id, syslogRoute(g.ports[i], backend, fmt.Sprintf(
				`{"host":"127.0.0.1","port":%d,"sock_type":%q,"batch_max_size":1,"flush_limit":1,"log_format":%s}`,
				tt.port, tt.network, format)))
			from := time.Now()
			var clientPorts []int
			for range 2 {
				clientPorts = append(clientPorts, session(t, g.ports[i]))
			}
			recs := rs.wait(t, tt.input, 2)
			to := time.Now()
			// one message per session, in whichever order the sessions ended
			unseen := map[string]bool{}
			for _, p := range clientPorts {
				unseen[strconv.Itoa(p)] = true
			}
			for j, rec := range recs {
				e := checkRecord(t, rec, g.proc.PID(), from, to)
				port, _ := e["client_port"].(string)
				if !unseen[port] {
					t.Errorf("message %d: client_port %q is not one of the sessions' %v (or came twice)", j, port, clientPorts)
				}
				delete(unseen, port)
				sameEntry(t, fmt.Sprintf("%s message %d", tt.network, j), e, map[string]any{
					"app": "e2e", "client_ip": "127.0.0.1", "client_port": port,
					"nested": map[string]any{"route": id}, "proto": "TCP", "received": "4", "route_id": id,
					"sent": "4", "server_port": strconv.Itoa(g.ports[i]), "status": "200", "upstream": backend,
				})
			}
		})
	}

	t.Run("log_format from plugin_metadata", func(t *testing.T) {
		conf := fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"sock_type":"udp","batch_max_size":1,"flush_limit":1}`, rs.UDP)
		g.must(t, "PUT", "/apisix/admin/stream_routes/r-meta", syslogRoute(g.ports[2], backend, conf))
		before := len(rs.records(false))
		session(t, g.ports[2])
		// no log_format anywhere: log-util.lua's error, nothing sent
		g.waitLog(t, "syslog's log_format is not set")
		g.must(t, "PUT", "/apisix/admin/plugin_metadata/syslog", `{"log_format":{"client_ip":"$remote_addr","via":"metadata"}}`)
		session(t, g.ports[2])
		recs := rs.wait(t, "imudp", 3)
		if n := len(rs.records(false)); n != before+1 {
			t.Errorf("rsyslogd got %d messages, want %d: the session without log_format sent one", n, before+1)
		}
		e := checkRecord(t, recs[2], g.proc.PID(), time.Time{}, time.Now())
		sameEntry(t, "metadata", e, map[string]any{"client_ip": "127.0.0.1", "route_id": "r-meta", "via": "metadata"})
	})
}

// TestSyslogMQTTClientID: mqtt-proxy's $mqtt_client_id in a syslog entry,
// from a real mosquitto_pub through a real broker.
func TestSyslogMQTTClientID(t *testing.T) {
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	rs := startRsyslog(t)
	b := startBroker(t)
	g := startGateway(t, 1)
	g.must(t, "PUT", "/apisix/admin/stream_routes/mq", fmt.Sprintf(`{"server_port":%d,"plugins":{`+
		`"mqtt-proxy":{"protocol_level":5},`+
		`"syslog":{"host":"127.0.0.1","port":%d,"batch_max_size":1,"flush_limit":1,"log_format":{"client":"$mqtt_client_id","status":"$status"}}},`+
		`"upstream":{"nodes":{"%s":1}}}`, g.ports[0], rs.TCP, b.addr()))
	if out, err := mqttRun(t, pub, g.ports[0], "-V", "mqttv5", "-i", "sensor-42", "-t", "t", "-m", "m"); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	// a refused session is logged too, with APISIX's 503
	if out, err := mqttRun(t, pub, g.ports[0], "-V", "mqttv311", "-i", "old-one", "-t", "t", "-m", "m"); err == nil {
		t.Fatalf("mosquitto_pub 3.1.1 on a level-5 route succeeded:\n%s", out)
	}
	// the two sessions may end in either order
	byStatus := map[string]map[string]any{}
	for _, rec := range rs.wait(t, "imtcp", 2) {
		e := checkRecord(t, rec, g.proc.PID(), time.Time{}, time.Now())
		st, _ := e["status"].(string)
		byStatus[st] = e
	}
	sameEntry(t, "proxied", byStatus["200"], map[string]any{"client": "sensor-42", "route_id": "mq", "status": "200"})
	sameEntry(t, "refused", byStatus["503"], map[string]any{"route_id": "mq", "status": "503"})
}

// TestSyslogServerDownDoesNotSlowSessions: with the syslog server
// refusing connections, or accepting and never reading, every session
// still goes through; the failures show in the gateway's log.
func TestSyslogServerDownDoesNotSlowSessions(t *testing.T) {
	backend := echoBackend(t)
	refused := e2e.FreePort(t)
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	e2e.Serve(t, stuck, func(net.Conn) { <-hold }) // accepts, never reads
	t.Cleanup(func() { close(hold) })              // runs before Serve's cleanup
	g := startGateway(t, 2)
	for i, port := range []int{refused, stuck.Addr().(*net.TCPAddr).Port} {
		g.must(t, "PUT", fmt.Sprintf("/apisix/admin/stream_routes/down%d", i), syslogRoute(g.ports[i], backend, fmt.Sprintf(
			`{"host":"127.0.0.1","port":%d,"batch_max_size":1,"flush_limit":1,"timeout":1000,"log_format":{"pad":"%0200d","c":"$remote_addr"}}`,
			port, 0)))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			session(t, g.ports[0])
			session(t, g.ports[1])
		}
	}()
	// a watchdog, not a timing assertion: sessions waiting on the syslog
	// server would take minutes
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("sessions stalled behind a dead syslog server")
	}
	g.waitLog(t, "failed to send log messages to 127.0.0.1:"+strconv.Itoa(refused))
}

// TestSyslogOnUDPRoute: the syslog plugin on a UDP stream route logs each
// UDP session when it ends (here after the upstream's 1 s read timeout),
// with the UDP variables.
func TestSyslogOnUDPRoute(t *testing.T) {
	rs := startRsyslog(t)
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	g := startGatewayWith(t, gatewayOpts{udp: 1})
	g.must(t, "PUT", "/apisix/admin/stream_routes/u1", fmt.Sprintf(`{"server_port":%d,"plugins":{"syslog":`+
		`{"host":"127.0.0.1","port":%d,"batch_max_size":1,"flush_limit":1,"log_format":{"c":"$remote_addr","p":"$remote_port","proto":"$protocol","st":"$status"}}},`+
		`"upstream":{"nodes":{"%s":1},"timeout":{"connect":1,"send":1,"read":1}}}`, g.udpPorts[0], rs.TCP, echo.LocalAddr()))
	local := sessionOver(t, "udp", g.udpPorts[0])
	rec := rs.wait(t, "imtcp", 1)[0]
	sameEntry(t, "udp session", checkRecord(t, rec, g.proc.PID(), time.Time{}, time.Now()), map[string]any{
		"c": "127.0.0.1", "p": strconv.Itoa(local), "proto": "UDP", "route_id": "u1", "st": "200"})
}

// TestSyslogOnService: syslog on a service (t/stream-plugin/syslog.t
// TEST 8): the route under it logs with route_id and service_id, and a
// change of the service's conf (UDP → TCP) applies to the next session.
func TestSyslogOnService(t *testing.T) {
	rs := startRsyslog(t)
	backend := echoBackend(t)
	g := startGateway(t, 1)
	service := func(network string, port int) string {
		return fmt.Sprintf(`{"upstream":{"nodes":{"%s":1}},"plugins":{"syslog":{"host":"127.0.0.1","port":%d,"sock_type":%q,`+
			`"batch_max_size":1,"flush_limit":1,"log_format":{"via":%q}}}}`, backend, port, network, network)
	}
	g.must(t, "PUT", "/apisix/admin/services/s1", service("udp", rs.UDP))
	g.must(t, "PUT", "/apisix/admin/stream_routes/r1", fmt.Sprintf(`{"server_port":%d,"service_id":"s1"}`, g.ports[0]))
	session(t, g.ports[0])
	rec := rs.wait(t, "imudp", 1)[0]
	sameEntry(t, "over udp", checkRecord(t, rec, g.proc.PID(), time.Time{}, time.Now()),
		map[string]any{"route_id": "r1", "service_id": "s1", "via": "udp"})

	g.must(t, "PUT", "/apisix/admin/services/s1", service("tcp", rs.TCP))
	session(t, g.ports[0])
	rec = rs.wait(t, "imtcp", 1)[0]
	sameEntry(t, "over tcp", checkRecord(t, rec, g.proc.PID(), time.Time{}, time.Now()),
		map[string]any{"route_id": "r1", "service_id": "s1", "via": "tcp"})
}

// TestSyslogOverTLS: `tls: true` sends over TLS to a real rsyslogd (gtls
// driver), verifying its certificate against the system roots (here
// SSL_CERT_FILE). APISIX's tls option never reaches its socket logger
// (docs/differences.md); here it does, and an untrusted server gets
// nothing.
func TestSyslogOverTLS(t *testing.T) {
	cert := e2e.NewCert(t, "localhost")
	rs := startRsyslogTLS(t, cert)
	backend := echoBackend(t)
	caFile, _ := cert.Files(t, t.TempDir(), "ca")
	g := startGatewayWith(t, gatewayOpts{tcp: 2, env: []string{"SSL_CERT_FILE=" + caFile}})
	conf := `{"host":"localhost","port":%d,"tls":true,"timeout":1000,"batch_max_size":1,"flush_limit":1,"log_format":{"over":%q}}`
	g.must(t, "PUT", "/apisix/admin/stream_routes/tls", syslogRoute(g.ports[0], backend, fmt.Sprintf(conf, rs.TLS, "tls")))
	session(t, g.ports[0])
	rec := rs.wait(t, "tls", 1)[0]
	sameEntry(t, "over tls", checkRecord(t, rec, g.proc.PID(), time.Time{}, time.Now()),
		map[string]any{"over": "tls", "route_id": "tls"})

	// the plain TCP input is no TLS server: the handshake fails, nothing
	// arrives there, and the session itself is unaffected
	g.must(t, "PUT", "/apisix/admin/stream_routes/plain", syslogRoute(g.ports[1], backend, fmt.Sprintf(conf, rs.TCP, "mismatch")))
	session(t, g.ports[1])
	g.waitLog(t, "failed to send log messages to localhost:"+strconv.Itoa(rs.TCP))
	for _, r := range rs.records(false) {
		if r.Input == "imtcp" && strings.Contains(r.Msg, "mismatch") {
			t.Errorf("a TLS logger's entry reached the plain input: %+v", r)
		}
	}
}
