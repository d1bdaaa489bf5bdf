// Command caddy is Caddy with the standard modules, caddy-l4 and the
// caddy-apisix stream plugin: go run ./cmd/caddy run --config examples/Caddyfile
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4"

	_ "github.com/caddy-apisix/stream"
)

func main() {
	caddycmd.Main()
}
