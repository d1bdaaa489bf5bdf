package plugin

import "encoding/json"

// prometheus (apisix/stream/plugins/prometheus.lua): the stream metrics
// of apisix/plugins/prometheus/exporter.lua stream_log. The data path
// here counts every route's sessions, with or without the plugin; the
// plugin's prefer_name labels the route's series with its name instead
// of its id (when it has one).
func init() {
	Register(Unit{
		Name:     "prometheus",
		Priority: 500,
		Schema:   `{"type":"object","properties":{"prefer_name":{"type":"boolean","default":false}}}`,
		New: func(raw json.RawMessage, _ *Env) (any, error) {
			p := &Prometheus{}
			if err := json.Unmarshal(raw, p); err != nil {
				return nil, err
			}
			return p, nil
		},
	})
}

// Prometheus is an instance of the prometheus plugin; the data path reads
// PreferName when it compiles the route.
type Prometheus struct {
	// PreferName labels the route's series with the route's name.
	PreferName bool `json:"prefer_name"`
}
