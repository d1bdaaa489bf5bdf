package standalone

import "github.com/caddy-apisix/stream/model"

// checkers are the Admin API body checks per kind (model's), with
// references resolved by the caller.
var checkers = map[model.Kind]func(map[string]any, model.Refs) error{
	model.StreamRoutes: model.CheckStreamRoute,
	model.Upstreams:    model.CheckUpstream,
	model.SSLs:         func(obj map[string]any, _ model.Refs) error { return model.CheckSSL(obj) },
}
