package apisixcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// client calls the Admin API of one node.
type client struct {
	addr, key string
}

// kinds are the stored collections, referenced objects first (the order
// of an import; a reset goes backwards).
var kinds = []string{"ssls", "upstreams", "services", "stream_routes", "plugin_metadata"}

// item is one list entry of the Admin API.
type item struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

// do sends one request and returns the status, headers and body. An
// answer with status >= 400 is an error that quotes APISIX's error_msg.
func (c *client) do(method, path string, body io.Reader) (http.Header, []byte, error) {
	h := http.Header{}
	if c.key != "" {
		h.Set("X-API-KEY", c.key)
	}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, path, h, body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.Header, b, nil
}

// list returns every object of a collection, in the Admin API's order,
// and the response headers. found is false when the node does not serve
// the collection.
func (c *client) list(kind string) (items []item, hdr http.Header, found bool, err error) {
	hdr, b, err := c.do(http.MethodGet, "/apisix/admin/"+kind, nil)
	if err != nil {
		// a collection this node does not serve, or stream mode off
		if strings.Contains(err.Error(), "HTTP 404") || strings.Contains(err.Error(), "stream mode is disabled") {
			return nil, nil, false, nil
		}
		return nil, nil, false, err
	}
	var l struct {
		List []item `json:"list"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // ids and times stay exact
	if err := dec.Decode(&l); err != nil {
		return nil, nil, false, fmt.Errorf("GET /apisix/admin/%s: %w", kind, err)
	}
	return l.List, hdr, true, nil
}
