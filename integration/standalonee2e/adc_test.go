//go:build linux

package standalonee2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// adcID is how ADC names objects it creates: the SHA-1 of the resource
// name (api7/adc docs/guides/resource-ids.md).
func adcID(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// adcHeaders are the headers of every request of ADC's apisix backend
// (libs/backend-apisix/src/index.ts: axios with Content-Type and
// X-API-KEY).
var adcHeaders = map[string]string{"Content-Type": "application/json"}

// TestADCBackendAPISIX replays ADC's apisix backend
// (libs/backend-apisix/src/{index,fetcher,operator,validator}.ts) against
// the embedded store: ping and version (GET /routes and its Server
// header), dump (every list in parallel), validate, sync create, a
// re-sync that changes the service's upstream, and delete in reverse.
func TestADCBackendAPISIX(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	in := newInstance(t, nil)
	in.start()
	port := portOf(in.proxy)
	svc, route := adcID("mysql"), adcID("mysql.mysql")

	// ping, then version from the Server header
	st, h, body := in.do("GET", "/apisix/admin/routes", "", "", adcHeaders)
	if st != 200 || body != `{"list":[],"total":0}`+"\n" || h.Get("Server") != "APISIX/3.18.0" {
		t.Fatalf("ping: %d %v %s", st, h, body)
	}
	dump := func() map[string]string {
		out := map[string]string{}
		for _, res := range []string{"services", "routes", "upstreams", "ssls", "consumers", "plugin_configs",
			"global_rules", "plugin_metadata", "stream_routes"} {
			st, _, body := in.do("GET", "/apisix/admin/"+res, "", "", adcHeaders)
			if st != 200 {
				t.Fatalf("dump %s: %d %s", res, st, body)
			}
			var list struct {
				List []struct {
					Key   string          `json:"key"`
					Value json.RawMessage `json:"value"`
				} `json:"list"`
			}
			if err := json.Unmarshal([]byte(body), &list); err != nil || list.List == nil {
				t.Fatalf("dump %s: no list: %v %s", res, err, body)
			}
			out[res] = body
		}
		return out
	}
	dump()

	upstream := func(node string) string {
		return `{"type":"roundrobin","scheme":"tcp","nodes":[{"host":"127.0.0.1","port":` +
			itoa(portOf(node)) + `,"weight":100}],"id":"` + svc + `","name":"mysql"}`
	}
	service := `{"id":"` + svc + `","name":"mysql","labels":{"team":"db"},"upstream_id":"` + svc + `"}`
	streamRoute := `{"labels":{"managed-by":"adc","__ADC_NAME":"mysql"},"server_port":` + itoa(port) +
		`,"service_id":"` + svc + `"}`

	// validate: the changed objects, the service's upstream beside it
	_, body = in.must(200, "POST", "/apisix/admin/configs/validate",
		`{"routes":[],"services":[`+service+`],"consumers":[],"ssls":[],"global_rules":[],`+
			`"stream_routes":[`+streamRoute+`],"plugin_metadata":[],"upstreams":[`+upstream(a)+`]}`, adcHeaders)
	if body != "{}\n" {
		t.Fatalf("validate: %s", body)
	}

	// sync, from an empty gateway: PUT only, the upstream first
	in.must(201, "PUT", "/apisix/admin/upstreams/"+svc, upstream(a), adcHeaders)
	in.must(201, "PUT", "/apisix/admin/services/"+svc, service, adcHeaders)
	in.must(201, "PUT", "/apisix/admin/stream_routes/"+route, streamRoute, adcHeaders)
	waitGreeter(t, in.proxy, "A")
	held, err := dial(in.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer held.c.Close()

	// re-sync: the same PUTs again answer 200, then a new upstream node
	in.must(200, "PUT", "/apisix/admin/upstreams/"+svc, upstream(a), adcHeaders)
	in.must(200, "PUT", "/apisix/admin/stream_routes/"+route, streamRoute, adcHeaders)
	in.must(200, "PUT", "/apisix/admin/upstreams/"+svc, upstream(b), adcHeaders)
	waitGreeter(t, in.proxy, "B")
	if err := held.echo("kept"); err != nil {
		t.Fatalf("connection established before the re-sync: %v", err)
	}
	d := dump()
	if !strings.Contains(d["stream_routes"], `"__ADC_NAME":"mysql"`) || !strings.Contains(d["stream_routes"], `"managed-by":"adc"`) ||
		!strings.Contains(d["services"], `"team":"db"`) {
		t.Fatalf("labels lost: %s %s", d["stream_routes"], d["services"])
	}

	// delete, in reverse
	in.must(200, "DELETE", "/apisix/admin/stream_routes/"+route, "", adcHeaders)
	in.must(200, "DELETE", "/apisix/admin/services/"+svc, "", adcHeaders)
	in.must(200, "DELETE", "/apisix/admin/upstreams/"+svc, "", adcHeaders)
	if _, err := greeter(in.proxy); err == nil {
		t.Fatal("a connection was proxied after ADC deleted everything")
	}
}
