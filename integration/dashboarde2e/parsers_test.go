//go:build linux

package dashboarde2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// callModule runs fn(args) exported by a dashboard module in the page and
// returns its JSON-encoded result. Values the page turns into Dates come
// back as ISO strings.
func (b *browser) callModule(module, fn string, args ...any) string {
	b.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		b.t.Fatal(err)
	}
	expr := fmt.Sprintf(`import('/apisix/dashboard/js/%s').then((m) => JSON.stringify(m[%q](...%s)))`, module, fn, raw)
	ctx, cancel := context.WithTimeout(b.ctx, uiWait)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s.%s: %v", module, fn, err)
	}
	return out
}

// TestParsers checks the page's readers of outside input, in Chromium:
// the Prometheus text of /metrics, certificates, the nodes field and the
// mapping of APISIX's validation errors to fields.
func TestParsers(t *testing.T) {
	g := startGateway(t, nil)
	b := newBrowser(t)
	b.run(chromedp.Navigate(g.baseURL()), chromedp.WaitVisible(chromedp.ID("key")))

	t.Run("prometheus", func(t *testing.T) {
		b.t = t
		for _, c := range []struct{ name, text, want string }{
			{"plain", "# HELP x y\n# TYPE x counter\napisix_stream_connection_total{route=\"1\"} 3\n",
				`[{"name":"apisix_stream_connection_total","labels":{"route":"1"},"value":3}]`},
			{"labels and escapes", `apisix_stream_bandwidth{type="ingress",route="a\"b\\c"} 1.5e3`,
				`[{"name":"apisix_stream_bandwidth","labels":{"type":"ingress","route":"a\"b\\c"},"value":1500}]`},
			{"no labels, timestamp", "up 1 1700000000000", `[{"name":"up","labels":{},"value":1}]`},
			{"infinity", `x_bucket{le="+Inf"} +Inf`, `[{"name":"x_bucket","labels":{"le":"+Inf"},"value":null}]`},
			{"garbage", "{}\n= 3\nname\n", `[]`},
		} {
			if got := b.callModule("prom.js", "parseProm", c.text); got != c.want {
				t.Errorf("%s: parseProm = %s, want %s", c.name, got, c.want)
			}
		}
		text := "apisix_stream_active_connections{route=\"1\"} 2\napisix_stream_bandwidth{type=\"ingress\",route=\"1\"} 10\n" +
			"apisix_stream_bandwidth{type=\"egress\",route=\"1\"} 5\napisix_stream_connection_total{route=\"2\"} 7\n"
		got := b.callModule("prom.js", "parseProm", text)
		var samples any
		_ = json.Unmarshal([]byte(got), &samples)
		totals := b.callModule("prom.js", "routeTotalsList", samples)
		if want := `[["1",{"active":2,"conns":0,"bytes":15}],["2",{"active":0,"conns":7,"bytes":0}]]`; totals != want {
			t.Errorf("routeTotals = %s, want %s", totals, want)
		}
	})

	t.Run("certificates", func(t *testing.T) {
		b.t = t
		for _, c := range []struct {
			name     string
			notAfter time.Time // UTCTime before 2050, GeneralizedTime from it
		}{
			{"utctime", time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)},
			{"generalizedtime", time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC)},
		} {
			cert := e2e.NewCertUntil(t, c.notAfter, "db.example.com", "x.example.com")
			want := fmt.Sprintf(`{"cn":"db.example.com","notBefore":%q,"notAfter":%q}`,
				cert.Cert.NotBefore.UTC().Format("2006-01-02T15:04:05.000Z"), c.notAfter.Format("2006-01-02T15:04:05.000Z"))
			if got := b.callModule("cert.js", "certInfo", cert.CertPEM+cert.KeyPEM); got != want {
				t.Errorf("%s: certInfo = %s, want %s", c.name, got, want)
			}
		}
		for _, bad := range []string{"", "not a cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"} {
			if got := b.callModule("cert.js", "certInfo", bad); !json.Valid([]byte(got)) || !containsAll(got, `"error"`) {
				t.Errorf("certInfo(%q) = %s, want an error", bad, got)
			}
		}
	})

	// bounded random inputs, as a fuzz target would feed them: mutated
	// and truncated certificates and metrics text never make the readers
	// throw; a certificate either reads or reports its error
	t.Run("random inputs", func(t *testing.T) {
		b.t = t
		cert := e2e.NewCertUntil(t, time.Now().Add(24*time.Hour), "db.example.com")
		raw, _ := json.Marshal(cert.CertPEM)
		expr := fmt.Sprintf(`Promise.all([import('/apisix/dashboard/js/cert.js'), import('/apisix/dashboard/js/prom.js')]).then(([c, p]) => {
			const NL = String.fromCharCode(10);
			let seed = 42;
			const rnd = (n) => { seed = (seed * 1103515245 + 12345) %% 2147483648; return seed %% n; };
			const pem = %s;
			const body = pem.split(NL).slice(1, -2).join('');
			const der = atob(body);
			const metrics = ['apisix_stream_bandwidth{type="ingress",route="1"} 10', '# HELP x', 'up 1', ''].join(NL);
			const bad = [];
			for (let i = 0; i < 500; i++) {
				let d = der.split('');
				for (let k = 0, n = 1 + rnd(4); k < n; k++) d[rnd(d.length)] = String.fromCharCode(rnd(256));
				if (rnd(3) === 0) d = d.slice(0, rnd(d.length));
				const mutated = '-----BEGIN CERTIFICATE-----' + NL + btoa(d.join('')) + NL + '-----END CERTIFICATE-----';
				try {
					const r = c.certInfo(mutated);
					if (!r.error && !(r.notAfter instanceof Date)) bad.push('cert ' + i + ': ' + JSON.stringify(r));
				} catch (e) { bad.push('cert ' + i + ' threw ' + e); }
				let m = metrics.split('');
				for (let k = 0, n = 1 + rnd(6); k < n; k++) m[rnd(m.length)] = String.fromCharCode(rnd(128));
				try { p.routeTotals(p.parseProm(m.join(''))); } catch (e) { bad.push('metrics ' + i + ' threw ' + e); }
			}
			return JSON.stringify(bad.slice(0, 5));
		})`, raw)
		ctx, cancel := context.WithTimeout(b.ctx, uiWait)
		defer cancel()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if out != "[]" {
			t.Errorf("readers failed on random inputs: %s", out)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		b.t = t
		for _, c := range []struct{ text, want string }{
			{"127.0.0.1:80 1\n\n[::1]:81 2 3", `{"nodes":[{"host":"127.0.0.1","port":80,"weight":1},{"host":"::1","port":81,"weight":2,"priority":3}],"errors":[]}`},
			{"db.example.com:3306", `{"nodes":[{"host":"db.example.com","port":3306,"weight":1}],"errors":[]}`},
			{"127.0.0.1 1", `{"nodes":[],"errors":["line 1: expected host:port weight [priority], got \"127.0.0.1 1\""]}`},
			{"a:1 x", `{"nodes":[],"errors":["line 1: expected host:port weight [priority], got \"a:1 x\""]}`},
		} {
			if got := b.callModule("kinds.js", "parseNodes", c.text); got != c.want {
				t.Errorf("parseNodes(%q) = %s, want %s", c.text, got, c.want)
			}
		}
	})

	t.Run("errors to fields", func(t *testing.T) {
		b.t = t
		names := []string{"id", "remote_addr", "timeout.connect", "timeout.send", "checks", "upstream_id", "client"}
		for _, c := range []struct{ msg, want string }{
			{`invalid configuration: property "remote_addr" validation failed: object matches none of the required`, `"remote_addr"`},
			{`invalid configuration: property "timeout" validation failed: property "send" is required`, `"timeout.send"`},
			{`invalid configuration: property "checks" validation failed: property "active" validation failed: property "type" validation failed: matches none of the enum values`, `"checks"`},
			{`failed to fetch upstream info by upstream id [9], response code: 404`, `"upstream_id"`},
			{`invalid configuration: property "client" validation failed: property "ca" is required`, `"client"`},
			{`failed to check token: invalid method for role viewer`, `null`},
		} {
			if got := b.callModule("api.js", "fieldOf", c.msg, names); got != c.want {
				t.Errorf("fieldOf(%q) = %s, want %s", c.msg, got, c.want)
			}
		}
	})
}
