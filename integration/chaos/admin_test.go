//go:build linux

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// admin is an Admin API client of one gateway.
type admin struct{ addr string }

// do sends one request with the admin key; body, when not nil, as JSON.
func (a admin) do(method, path string, body any) (int, []byte, error) {
	var raw []byte
	var hdr map[string]string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		raw, hdr = b, e2e.JSONContent
	}
	code, _, b, err := e2e.Admin{Addr: a.addr}.Do(method, path, e2e.AdminKey, raw, hdr)
	return code, b, err
}

// gen is the "gen" label of a stored object's GET answer; ok is false
// when the object is absent (404).
func (a admin) gen(path string) (gen string, ok bool, err error) {
	code, body, err := a.do(http.MethodGet, "/apisix/admin/"+path, nil)
	if err != nil {
		return "", false, err
	}
	if code == http.StatusNotFound {
		return "", false, nil
	}
	if code != http.StatusOK {
		return "", false, fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	var v struct {
		Value struct {
			Labels map[string]string `json:"labels"`
		} `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", false, fmt.Errorf("GET %s: %v: %s", path, err, body)
	}
	return v.Value.Labels["gen"], true, nil
}

// ledger is what the acknowledged writes left: path -> the "gen" label
// of the last acknowledged PUT, or "" after an acknowledged DELETE. The
// writes begun on a path since, without an answer (a transport error,
// e.g. at a kill -9), may or may not be applied: pending keeps all of
// them, and the stored state may be any one of those or the acknowledged
// one.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]string
	pending map[string][]string
}

func newLedger() *ledger {
	return &ledger{acked: map[string]string{}, pending: map[string][]string{}}
}

func (l *ledger) begin(path, gen string) {
	l.mu.Lock()
	l.pending[path] = append(l.pending[path], gen)
	l.mu.Unlock()
}

// end records the answer of the write of gen on path: acknowledged, the
// path's state is gen and nothing earlier is pending any more; refused
// (a 4xx), gen is not pending; a transport error leaves it pending.
func (l *ledger) end(path, gen string, acked, refused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case acked:
		l.acked[path] = gen
		delete(l.pending, path)
	case refused:
		p := l.pending[path]
		if i := slices.Index(p, gen); i >= 0 {
			l.pending[path] = slices.Delete(p, i, i+1)
		}
	}
}

// verify compares every path of the ledger with what the gateway
// answers and returns how many paths it checked and how many lost an
// acknowledged write. A checked path's state becomes acknowledged.
func (l *ledger) verify(a admin) (checked, lost int, detail []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for path, want := range l.acked {
		got, ok, err := a.gen(path)
		if err != nil {
			lost++
			detail = append(detail, err.Error())
			continue
		}
		if !ok {
			got = ""
		}
		checked++
		if got != want && !slices.Contains(l.pending[path], got) {
			lost++
			detail = append(detail, fmt.Sprintf("%s: acknowledged gen %q, stored %q (unanswered since: %q)", path, want, got, l.pending[path]))
		}
		l.acked[path] = got
		delete(l.pending, path)
	}
	return checked, lost, detail
}

// kinds of objects the churn writes, in counters.changes order.
var kinds = []string{"stream_routes", "upstreams", "services", "ssls"}

// object is a valid object of kind with the label gen; node is an
// upstream node, cert a certificate for the ssls.
func object(kind, gen string, i int, churnPort int, node string, cert *e2e.Cert) map[string]any {
	labels := map[string]string{"gen": gen}
	up := map[string]any{"type": "roundrobin", "nodes": map[string]int{node: 1 + i%5}}
	switch kind {
	case "stream_routes":
		return map[string]any{"labels": labels, "server_port": churnPort, "remote_addr": fmt.Sprintf("127.0.1.%d", i+1), "upstream": up}
	case "upstreams":
		return map[string]any{"labels": labels, "type": "roundrobin", "nodes": map[string]int{node: 1 + i%5}}
	case "services":
		return map[string]any{"labels": labels, "upstream": up}
	default:
		return map[string]any{"labels": labels, "cert": cert.CertPEM, "key": cert.KeyPEM, "snis": []string{fmt.Sprintf("churn%d.test", i)}}
	}
}

// churn PUTs and DELETEs objects of every kind (ids churn-0..9 each)
// until ctx ends, recording acknowledged writes in led. Every tenth write
// re-points the live route's upstream between the two echo backends
// under the streams.
func churn(ctx context.Context, c *counters, a admin, led *ledger, rng *rand.Rand, churnPort, livePort int, echoes [2]string, cert *e2e.Cert) {
	for n := 0; ctx.Err() == nil; n++ {
		k := rng.IntN(len(kinds))
		i := rng.IntN(10)
		path := fmt.Sprintf("%s/churn-%d", kinds[k], i)
		gen := fmt.Sprint(n)
		method := http.MethodPut
		var body any
		switch {
		case n%10 == 0:
			k, path = 0, "stream_routes/live"
			body = map[string]any{"labels": map[string]string{"gen": gen}, "server_port": livePort,
				"upstream": map[string]any{"type": "roundrobin", "nodes": map[string]int{echoes[n/10%2]: 1}}}
		case rng.IntN(4) == 0:
			method, gen = http.MethodDelete, ""
		default:
			body = object(kinds[k], gen, i, churnPort, echoes[i%2], cert)
		}
		led.begin(path, gen)
		start := time.Now()
		code, _, err := a.do(method, "/apisix/admin/"+path, body)
		acked := err == nil && code < 300
		refused := err == nil && code >= 400 && code < 500
		led.end(path, gen, acked, refused)
		switch {
		case acked:
			c.adminAcked.Add(1)
			c.changes[k].Add(1)
			c.adminLat.add(time.Since(start))
		case refused:
			c.adminRefused.Add(1) // e.g. 404 on a DELETE of an absent id
		default:
			c.adminErrors.Add(1)
		}
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
	}
}

// badRequests sends malformed Admin API requests until ctx ends and
// counts 5xx answers: bodies (not JSON, wrong types, unknown kinds of
// values, huge numbers, deep nesting), paths (unknown kinds, traversal,
// odd ids), query strings and headers (wrong content type, bad or no
// key).
func badRequests(ctx context.Context, c *counters, addr string, rng *rand.Rand) {
	bodies := []string{
		``, `{`, `[]`, `null`, `"x"`, `{"server_port":"x"}`, `{"server_port":70000}`, `{"upstream":{"nodes":"x"}}`,
		`{"upstream":{"type":"nope","nodes":{"127.0.0.1:1":1}}}`, `{"upstream":{"nodes":{"::::":1}}}`,
		`{"cert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----","key":"x","snis":["a"]}`,
		`{"nodes":{"127.0.0.1:1":-1}}`, `{"nodes":{"127.0.0.1:1":1e400}}`, `{"labels":{"a":1}}`,
		`{"plugins":{"no-such-plugin":{}}}`, `{"id":{"a":1}}`, strings.Repeat("[", 5000), `{"remote_addr":"300.1.1.1"}`,
		"\xff\xfe\x00", `{"upstream_id":"missing"}`, `{"service_id":"missing"}`,
	}
	paths := []string{
		"stream_routes/x", "upstreams/x", "services/x", "ssls/x", "stream_routes/", "nope/x", "stream_routes/../upstreams/x",
		"stream_routes/%00", "upstreams/" + strings.Repeat("a", 300), "stream_routes/x/y", "ssls/..", "upstreams/x?ttl=abc",
		"stream_routes?page=-1&page_size=x", "upstreams/x?force=maybe", "routes/x", "plugins/list?x=%zz",
	}
	methods := []string{http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodGet, "PROPFIND"}
	for ctx.Err() == nil {
		body := confine([]byte(bodies[rng.IntN(len(bodies))]))
		path := "/apisix/admin/" + paths[rng.IntN(len(paths))]
		hdr := map[string]string{"Content-Type": []string{"application/json", "text/plain", "application/x-www-form-urlencoded", ""}[rng.IntN(4)]}
		key := e2e.AdminKey
		switch rng.IntN(8) {
		case 0:
			key = ""
		case 1:
			key = "wrong-key"
		case 2:
			hdr["X-Forwarded-For"] = "not-an-ip, 999.1.1.1"
		}
		if strings.HasSuffix(path, "/x") && rng.IntN(4) == 0 {
			path = path[:len(path)-1] + fmt.Sprintf("badinput-%d", rng.IntN(3))
		}
		code, _, _, err := e2e.Admin{Addr: addr}.Do(methods[rng.IntN(len(methods))], path, key, body, hdr)
		c.badInputs.Add(1)
		switch {
		case err != nil:
			c.badErrors.Add(1)
		case code >= 500:
			c.bad5xx.Add(1)
		}
	}
}

// confine gives a bad input that is a JSON object, and so may be a
// valid stream route after all (APISIX's upstream type is a free
// string), a server_port no listener has: stored, it must not take the
// traffic of the other routes.
func confine(body []byte) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		return body
	}
	if _, ok := m["server_port"]; !ok {
		m["server_port"] = 9
	}
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}

// reloads POSTs /load every period until ctx ends, alternating between
// the config with and without the extra listener, and checks after each
// that the extra listener is up (a connection echoes) or down (refused).
func reloads(ctx context.Context, c *counters, addr string, config func(extra bool) map[string]any, extraAddr string, period time.Duration) {
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		extra := n%2 == 1
		code, body, err := admin{addr}.do(http.MethodPost, "/load", config(extra))
		if err != nil || code != http.StatusOK {
			c.reloadFailed.Add(1)
			_ = body
			continue
		}
		c.reloads.Add(1)
		c.extraChecks.Add(1)
		conn, err := net.DialTimeout("tcp", extraAddr, 2*time.Second)
		if err == nil {
			ok := echoOnce(conn)
			conn.Close()
			switch {
			case !extra:
				c.extraStillUp.Add(1)
			case !ok:
				c.extraNotUp.Add(1)
			}
		} else if extra {
			c.extraNotUp.Add(1)
		}
	}
}

// echoOnce writes a few bytes to conn and reports whether they came back.
func echoOnce(conn net.Conn) bool {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("ping-0123456789")
	if _, err := conn.Write(msg); err != nil {
		return false
	}
	got := make([]byte, len(msg))
	n := 0
	for n < len(got) {
		m, err := conn.Read(got[n:])
		n += m
		if err != nil {
			break
		}
	}
	return string(got[:n]) == string(msg)
}
