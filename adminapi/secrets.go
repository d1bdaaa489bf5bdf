package adminapi

import (
	"encoding/json"

	"github.com/caddy-apisix/stream/model"
)

// publicValue is a stored value as the Admin API shows it: private keys
// removed. APISIX returns them AES-encrypted; this project never returns
// them at all (docs/differences.md#secrets-stay-out-of-logs-and-answers).
func publicValue(kind model.Kind, raw []byte) json.RawMessage {
	obj, err := model.DecodeObject(raw)
	if err != nil {
		// Stored values are always objects written by this package or
		// the app; show nothing rather than something unstripped.
		return json.RawMessage("{}")
	}
	stripSecrets(kind, obj)
	out, err := model.EncodeObject(obj)
	if err != nil {
		return json.RawMessage("{}")
	}
	return out
}

// stripSecrets removes private keys from a decoded object in place:
// an SSL's key and keys, an upstream's tls.client_key, and the same in a
// stream route's or a service's inline upstream and in the inline
// upstreams of its traffic-split plugin.
func stripSecrets(kind model.Kind, obj map[string]any) {
	switch kind {
	case model.SSLs:
		delete(obj, "key")
		delete(obj, "keys")
	case model.Upstreams:
		stripUpstream(obj)
	case model.StreamRoutes, model.Services:
		if up, ok := obj["upstream"].(map[string]any); ok {
			stripUpstream(up)
		}
		for _, up := range pluginUpstreams(obj) {
			if m, ok := up["upstream"].(map[string]any); ok {
				stripUpstream(m)
			}
		}
	}
}

func stripUpstream(up map[string]any) {
	if tls, ok := up["tls"].(map[string]any); ok {
		delete(tls, "client_key")
	}
}

// pluginUpstreams returns the weighted_upstreams entries of a stream
// route's or a service's traffic-split plugin.
func pluginUpstreams(route map[string]any) []map[string]any {
	plugins, _ := route["plugins"].(map[string]any)
	ts, _ := plugins["traffic-split"].(map[string]any)
	rules, _ := ts["rules"].([]any)
	var out []map[string]any
	for _, r := range rules {
		rm, _ := r.(map[string]any)
		wus, _ := rm["weighted_upstreams"].([]any)
		for _, wu := range wus {
			if m, ok := wu.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}
