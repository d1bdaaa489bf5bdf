// Package standalone is APISIX's standalone mode without etcd: the
// declarative document (apisix.yaml / apisix.json) that holds every
// object, its parsing and validation, the API-driven endpoints
// /apisix/admin/configs (apisix/admin/standalone.lua) and the file watcher
// of the file-driven mode (apisix/core/config_yaml.lua).
//
// It is plain Go over the registry: a document is checked whole, object by
// object as the Admin API checks a body, and published in one registry
// transaction, so the data path sees the old objects or the new ones.
package standalone

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-apisix/stream/model"
)

// Format is how a document is written.
type Format string

// The document formats, as APISIX's deployment.*.config_provider names them.
const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// Document is a decoded standalone document: top-level keys to values, in
// the form model.DecodeObject produces (map[string]any, []any,
// json.Number, string, bool, nil).
type Document map[string]any

// resource is one top-level collection of a document.
type resource struct {
	// key is the top-level key ("stream_routes").
	key string
	// kind is the registry kind; "" for collections this gateway does not
	// serve.
	kind model.Kind
	// httpOnly collections are APISIX HTTP objects: any item is refused.
	httpOnly bool
}

// resources are APISIX's ALL_RESOURCE_KEYS (apisix/admin/config_validate.lua:
// the HTTP and stream etcd directories of apisix/constants.lua), in the
// order they are checked and published: what others refer to first.
var resources = []resource{
	{key: "ssls", kind: model.SSLs},
	{key: "upstreams", kind: model.Upstreams},
	{key: "services", kind: model.Services},
	{key: "stream_routes", kind: model.StreamRoutes},
	{key: "plugin_metadata", kind: model.PluginMetadata},
	// plugins lists the enabled plugins; APISIX checks nothing in it.
	{key: "plugins"},
	{key: "routes", httpOnly: true},
	{key: "consumers", httpOnly: true},
	{key: "global_rules", httpOnly: true},
	{key: "protos", httpOnly: true},
	{key: "plugin_configs", httpOnly: true},
	{key: "consumer_groups", httpOnly: true},
	{key: "secrets", httpOnly: true},
}

// HTTPOnly are the APISIX collections this gateway does not serve; the
// Admin API lists them empty and refuses writes to them.
func HTTPOnly() []string {
	var out []string
	for _, r := range resources {
		if r.httpOnly {
			out = append(out, r.key)
		}
	}
	return out
}

// confVersionKey is the version key of a collection ("routes_conf_version").
func confVersionKey(key string) string { return key + "_conf_version" }

// Parse decodes a document: YAML must end with a "#END" line, and
// environment variables ${{VAR}} / ${{VAR:=default}} are replaced as APISIX
// does (in the raw text for YAML, in decoded strings for JSON). lookup is
// os.LookupEnv in production.
func Parse(data []byte, format Format, lookup func(string) (string, bool)) (Document, error) {
	switch format {
	case YAML:
		if !hasEndFlag(data) {
			return nil, fmt.Errorf("missing valid end flag in file")
		}
		text, err := substituteText(string(data), lookup)
		if err != nil {
			return nil, err
		}
		return decodeYAML([]byte(text))
	case JSON:
		v, err := decodeJSON(data)
		if err != nil {
			return nil, fmt.Errorf("failed to decode json: %w", err)
		}
		doc, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("failed to decode json: the document is not an object")
		}
		if err := substituteValues(doc, lookup); err != nil {
			return nil, err
		}
		return Document(doc), nil
	}
	return nil, fmt.Errorf("unknown document format %q", format)
}

// hasEndFlag is config_yaml.lua's check: the last 10 bytes match
// "#END\s*$".
func hasEndFlag(data []byte) bool {
	tail := data[max(0, len(data)-10):]
	return strings.HasSuffix(strings.TrimRight(string(tail), " \t\r\n\v\f"), "#END")
}

// decodeJSON decodes one JSON value with exact numbers; trailing data is
// an error.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the document")
	}
	return v, nil
}

// DecodeBody decodes a PUT /apisix/admin/configs body: YAML when the
// content type says so (no #END needed, no variables), else JSON.
func DecodeBody(body []byte, contentType string) (Document, error) {
	if strings.HasPrefix(contentType, "application/yaml") {
		doc, err := decodeYAML(body)
		if err != nil {
			return nil, fmt.Errorf("invalid yaml request body")
		}
		return doc, nil
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		// cjson decodes any value; a non-table fails later in Lua
		return nil, fmt.Errorf("the request body is not an object")
	}
	return Document(doc), nil
}

// number reads a conf_version value: ok=false when it is not a number.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// Plain returns doc with numbers as int64 or float64, for encoders that
// do not know json.Number (YAML).
func Plain(doc Document) map[string]any {
	return plain(map[string]any(doc)).(map[string]any)
}

func plain(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = plain(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = plain(e)
		}
		return s
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}
