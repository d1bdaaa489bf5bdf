package stream

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-apisix/stream/apisixcmd"
)

func init() {
	caddycmd.RegisterCommand(apisixcmd.Command())
}
