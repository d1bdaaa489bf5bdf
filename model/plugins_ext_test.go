package model_test

// The stream plugins register their schemas from the plugin package: the
// validation tests of this package need them.
import _ "github.com/caddy-apisix/stream/plugin"
