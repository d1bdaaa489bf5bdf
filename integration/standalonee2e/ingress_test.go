//go:build linux

package standalonee2e

import (
	"strings"
	"testing"
)

// ingressDoc is what the ingress controller's ADC (apisix-standalone
// backend) PUTs for a TCPRoute with two backends: the service's upstream
// under the service's id, the second backend as an upstream labelled
// with the service (__ADC_UPSTREAM_SERVICE_ID), traffic-split on the
// service, and the stream route under the service
// (apisix-ingress-controller internal/adc/translator/tcproute.go, api7/adc
// libs/backend-apisix-standalone/src/operator.ts).
func ingressDoc(ts int64, nodeA, nodeB string, port int) map[string]any {
	const svc = "default_tcp-app_0"
	node := func(addr string) []any {
		return []any{map[string]any{"host": "127.0.0.1", "port": portOf(addr), "weight": 1}}
	}
	return map[string]any{
		"upstreams_conf_version":     ts,
		"services_conf_version":      ts,
		"stream_routes_conf_version": ts,
		"upstreams": []any{
			map[string]any{"id": svc, "name": svc, "modifiedIndex": ts, "type": "roundrobin", "scheme": "tcp", "nodes": node(nodeA),
				"labels": map[string]any{"k8s/kind": "TCPRoute", "managed-by": "apisix-ingress-controller"}},
			map[string]any{"id": svc + "-b", "name": svc + "-b", "modifiedIndex": ts, "type": "roundrobin", "scheme": "tcp", "nodes": node(nodeB),
				"labels": map[string]any{"__ADC_UPSTREAM_SERVICE_ID": svc}},
		},
		"services": []any{map[string]any{
			"id": svc, "name": svc, "modifiedIndex": ts, "upstream_id": svc,
			"labels": map[string]any{"k8s/kind": "TCPRoute", "managed-by": "apisix-ingress-controller"},
			"plugins": map[string]any{"traffic-split": map[string]any{"rules": []any{map[string]any{
				"weighted_upstreams": []any{map[string]any{"upstream_id": svc + "-b", "weight": 1}, map[string]any{"weight": 1}},
			}}}},
		}},
		"stream_routes": []any{map[string]any{
			"id": svc + "-route", "modifiedIndex": ts, "service_id": svc, "server_port": port,
			"labels": map[string]any{"__ADC_NAME": "tcp-app", "managed-by": "apisix-ingress-controller"},
		}},
	}
}

// TestIngressControllerShapes PUTs the ingress controller's document for
// a TCPRoute with two backends to an API-driven node: accepted, served,
// listed with its labels, and kept across a re-sync with a newer
// timestamp.
func TestIngressControllerShapes(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	in := newInstance(t, map[string]any{"config_provider": "json"})
	in.start()
	const ts = int64(1760000000000)
	st, _, body := in.put(ingressDoc(ts, a, b, portOf(in.proxy)))
	if st != 202 {
		t.Fatalf("PUT: %d %s", st, body)
	}
	seen := map[string]int{}
	for range 40 {
		name, err := greeter(in.proxy)
		if err != nil {
			t.Fatal(err)
		}
		seen[name]++
	}
	// traffic-split 1:1 is a smooth weighted round robin: both get some
	if seen["A"] == 0 || seen["B"] == 0 {
		t.Fatalf("traffic-split 1:1 over 40 connections: %v", seen)
	}
	t.Logf("40 connections: %v", seen)
	_, body = in.must(200, "GET", "/apisix/admin/services/default_tcp-app_0", "", nil)
	if !strings.Contains(body, `"managed-by":"apisix-ingress-controller"`) || !strings.Contains(body, `"traffic-split"`) {
		t.Fatalf("service: %s", body)
	}
	if st, _, body := in.put(ingressDoc(ts+1, a, b, portOf(in.proxy))); st != 202 {
		t.Fatalf("re-sync: %d %s", st, body)
	}
}
