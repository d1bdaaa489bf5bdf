//go:build linux

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
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

// write sends one write of gen on path ("" for a DELETE) to a and
// records it: acknowledged (2xx); refused (a 4xx, or a 503 because the
// disk is full: the store then changed nothing); or, a transport error
// or another answer, unknown. It returns the answer.
func (l *ledger) write(a admin, method, path, gen string, body any) (code int, resp []byte, err error) {
	l.begin(path, gen)
	code, resp, err = a.do(method, "/apisix/admin/"+path, body)
	l.end(path, gen, err == nil && code < 300, err == nil && (code >= 400 && code < 500 || diskFull(code, resp)))
	return code, resp, err
}

// diskFull reports whether an answer is the store's refusal of a write
// that does not fit on the disk.
func diskFull(code int, resp []byte) bool {
	return code == http.StatusServiceUnavailable && bytes.Contains(resp, []byte("no space left on device"))
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

// check verifies l against a (as verify), adds the paths checked and
// lost to verified and lost, and reports each loss as an error of t
// prefixed with what.
func (l *ledger) check(t *testing.T, a admin, verified, lost *atomic.Int64, what string) {
	checked, n, detail := l.verify(a)
	verified.Add(int64(checked))
	lost.Add(int64(n))
	for _, d := range detail {
		t.Errorf("%s: %s", what, d)
	}
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
		start := time.Now()
		code, _, err := led.write(a, method, path, gen, body)
		acked := err == nil && code < 300
		refused := err == nil && code >= 400 && code < 500
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

// fuzzClient is the fuzz workers' client: keep-alive, one idle
// connection per worker.
var fuzzClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Seeds of the fuzzer: bad bodies, and valid objects of every kind whose
// mutations explore what lies near them.
var (
	fuzzBodies = []string{
		``, `{`, `[]`, `null`, `"x"`, `{"server_port":"x"}`, `{"server_port":70000}`, `{"upstream":{"nodes":"x"}}`,
		`{"upstream":{"type":"nope","nodes":{"127.0.0.1:1":1}}}`, `{"upstream":{"nodes":{"::::":1}}}`,
		`{"cert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----","key":"x","snis":["a"]}`,
		`{"nodes":{"127.0.0.1:1":-1}}`, `{"nodes":{"127.0.0.1:1":1e400}}`, `{"labels":{"a":1}}`,
		`{"plugins":{"no-such-plugin":{}}}`, `{"id":{"a":1}}`, strings.Repeat("[", 5000), `{"remote_addr":"300.1.1.1"}`,
		"\xff\xfe\x00", `{"upstream_id":"missing"}`, `{"service_id":"missing"}`,
		`{"server_port":9,"remote_addr":"127.0.0.9/32","upstream":{"type":"roundrobin","nodes":{"127.0.0.1:9":1}}}`,
		`{"type":"chash","key":"remote_addr","hash_on":"vars","nodes":[{"host":"127.0.0.1","port":9,"weight":1,"priority":0}],"retries":1,"timeout":{"connect":1,"send":1,"read":1}}`,
		`{"upstream":{"type":"least_conn","nodes":{"127.0.0.1:9":1}},"plugins":{"limit-conn":{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}}}`,
		`{"server_port":9,"plugins":{"ip-restriction":{"whitelist":["127.0.0.0/8"]},"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":{"type":"roundrobin","nodes":{"127.0.0.1:9":1}},"weight":1}]}]}},"upstream_id":"1"}`,
		`{"upstream":{"type":"roundrobin","scheme":"tls","tls":{"client_cert":"x","client_key":"y"},"nodes":{"127.0.0.1:9":1},"checks":{"active":{"type":"tcp","healthy":{"interval":1}}}}}`,
	}
	fuzzPaths = []string{
		"stream_routes/x", "upstreams/x", "services/x", "ssls/x", "stream_routes/", "nope/x", "stream_routes/../upstreams/x",
		"stream_routes/%00", "upstreams/" + strings.Repeat("a", 300), "stream_routes/x/y", "ssls/..", "upstreams/x?ttl=abc",
		"stream_routes?page=-1&page_size=x", "upstreams/x?force=maybe", "routes/x", "plugins/list?x=%zz",
		"stream_routes/badinput-0", "upstreams/badinput-1", "services/badinput-2", "plugin_metadata/limit-conn",
		"schema/validate/stream_routes", "stream_routes", "upstreams", "ssls", "services", "plugins/limit-conn", "",
	}
	fuzzQueries = []string{"page", "page_size", "ttl", "force", "name", "label", "filter", "api_key", "subsystem", "x"}
	// fuzzHeaders are the headers fuzzed (not Origin: Caddy's own admin
	// endpoint checks it, and logs every refusal at ERROR)
	fuzzHeaders = []string{"Content-Type", "Accept", "Cookie", "X-Real-IP", "X-Forwarded-For", "If-Match",
		"Content-Encoding", "Accept-Encoding", "X-API-KEY", "Authorization", "Range", "Expect"}
	// fuzzBytes are the bytes a mutation inserts: JSON's syntax, digits,
	// and bytes that are not UTF-8
	fuzzBytes = []byte("{}[]\":,.-+eE0123456789 \\/ntfu\x00\x7f\x80\xc0\xff")
)

// mutate changes b in 1 to 4 random places: a byte replaced, inserted or
// deleted, a range duplicated, or a splice with another seed.
func mutate(b []byte, rng *rand.Rand) []byte {
	out := slices.Clone(b)
	for range 1 + rng.IntN(4) {
		i := 0
		if len(out) > 0 {
			i = rng.IntN(len(out))
		}
		switch rng.IntN(5) {
		case 0:
			if len(out) > 0 {
				out[i] = fuzzBytes[rng.IntN(len(fuzzBytes))]
			}
		case 1:
			out = slices.Insert(out, i, fuzzBytes[rng.IntN(len(fuzzBytes))])
		case 2:
			if len(out) > 0 {
				out = slices.Delete(out, i, min(len(out), i+1+rng.IntN(8)))
			}
		case 3:
			if len(out) > 0 && len(out) < 64<<10 {
				j := min(len(out), i+1+rng.IntN(32))
				out = slices.Insert(out, j, out[i:j]...)
			}
		default:
			other := fuzzBodies[rng.IntN(len(fuzzBodies))]
			if len(other) > 0 {
				out = append(out[:i], other[rng.IntN(len(other)):]...)
			}
		}
	}
	return out
}

// fuzzPath is a seed path, sometimes with a character no id may hold
// inserted (so that no fuzzed PUT stores an object under a new id: the
// store must not grow without bound) and a fuzzed query string.
func fuzzPath(rng *rand.Rand) string {
	path := fuzzPaths[rng.IntN(len(fuzzPaths))]
	if rng.IntN(3) == 0 && len(path) > 0 {
		i := rng.IntN(len(path) + 1)
		path = path[:i] + []string{"%", "%25", "!", "~", "%2F", "%ff", "\\", "*", "%20", "..", "//"}[rng.IntN(11)] + path[i:]
	}
	if rng.IntN(3) == 0 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		for range 1 + rng.IntN(3) {
			v := string(mutate([]byte(fmt.Sprint(rng.IntN(1000)-100)), rng))
			path += sep + fuzzQueries[rng.IntN(len(fuzzQueries))] + "=" + url.QueryEscape(v)
			sep = "&"
		}
	}
	return "/apisix/admin/" + path
}

// fuzzHeaderValue is a printable value (what an HTTP client can send),
// sometimes random, sometimes a plausible one.
func fuzzHeaderValue(rng *rand.Rand) string {
	plausible := []string{"application/json", "text/plain", "gzip", "bytes=0-1", "100-continue", "x_api_key=wrong",
		"127.0.0.1", "not-an-ip, 999.1.1.1", "null", "http://evil.example", "wrong-key", ""}
	if rng.IntN(2) == 0 {
		return plausible[rng.IntN(len(plausible))]
	}
	b := make([]byte, rng.IntN(200))
	for i := range b {
		b[i] = byte(0x20 + rng.IntN(0x5f))
	}
	return string(b)
}

// badRequests is one fuzz worker: until ctx ends it sends Admin API
// requests on a keep-alive connection with fuzzed bodies (seeds and
// their mutations), paths, query strings, methods and headers (wrong
// content types, bad or no key, odd values), and counts 5xx answers.
// Fuzzed writes only reach bounded ids, and JSON objects are confined
// to a port no listener has.
func badRequests(ctx context.Context, c *counters, addr string, rng *rand.Rand) {
	methods := []string{http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet, http.MethodPost, "PROPFIND", http.MethodHead, http.MethodOptions}
	for ctx.Err() == nil {
		body := []byte(fuzzBodies[rng.IntN(len(fuzzBodies))])
		if rng.IntN(2) == 0 {
			body = mutate(body, rng)
		}
		body = confine(body)
		path := fuzzPath(rng)
		method := methods[rng.IntN(len(methods))]
		key := e2e.AdminKey
		switch rng.IntN(8) {
		case 0:
			key = ""
		case 1:
			key = "wrong-key"
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
		if err != nil {
			c.badInputs.Add(1)
			continue // a path the client cannot send
		}
		if key != "" {
			req.Header.Set("X-API-KEY", key)
		}
		req.Header.Set("Content-Type", []string{"application/json", "text/plain", "application/x-www-form-urlencoded", ""}[rng.IntN(4)])
		for range rng.IntN(3) {
			req.Header.Set(fuzzHeaders[rng.IntN(len(fuzzHeaders))], fuzzHeaderValue(rng))
		}
		if method == http.MethodPost {
			// a POST stores under a new id: only unauthenticated ones,
			// so that the store stays bounded
			req.Header.Del("X-API-KEY")
		}
		resp, err := fuzzClient.Do(req)
		c.badInputs.Add(1)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				c.badErrors.Add(1)
				c.badErrKinds[transportErrKind(err)].Add(1)
				if time.Since(time.Unix(0, c.lastReload.Load())) < time.Second {
					c.badErrNearReload.Add(1)
				}
			}
		default:
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				c.bad5xx.Add(1)
			}
		}
	}
}

// transportErrKinds name what transportErrKind tells apart.
var transportErrKinds = [...]string{"closed by the server (EOF)", "reset", "timeout", "refused", "other"}

// transportErrKind sorts a fuzz request's transport error, so that the
// table says whether they are the admin endpoint's restarts at each
// reload (connections closed or reset) or something else.
func transportErrKind(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "server closed"):
		return 0
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return 1
	case errors.As(err, &ne) && ne.Timeout():
		return 2
	case errors.Is(err, syscall.ECONNREFUSED):
		return 3
	}
	return 4
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
	if _, isString := m["server_port"].(string); !isString {
		m["server_port"] = 9 // absent, or a number that may be a live port
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
		c.lastReload.Store(time.Now().UnixNano())
		code, body, err := admin{addr}.do(http.MethodPost, "/load", config(extra))
		if err != nil && transportErrKind(err) <= 1 {
			// closed or reset unanswered: Caddy binds its new admin
			// socket beside the old one (SO_REUSEPORT) at each load and
			// stops the old one in the background (caddy's admin.go
			// replaceLocalAdminServer), so a connection the kernel gave
			// the old one is dropped. Loading the same config again is
			// harmless; a second failure counts.
			c.reloadRetried.Add(1)
			time.Sleep(100 * time.Millisecond)
			code, body, err = admin{addr}.do(http.MethodPost, "/load", config(extra))
		}
		if err != nil || code != http.StatusOK {
			c.reloadFailed.Add(1)
			c.lastReloadFailure.Store(fmt.Sprintf("at %s: %d %s %v", time.Now().UTC().Format("15:04:05.000"), code, body, err))
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
