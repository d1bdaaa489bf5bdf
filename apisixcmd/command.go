// Package apisixcmd is the "caddy apisix" command: export, import, routes
// and reset, each driving a running node through its Admin API (the one
// on Caddy's admin endpoint, or admin_listen), as a user with curl would.
package apisixcmd

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// Command is the "apisix" Caddy subcommand; the plugin registers it with
// caddycmd.RegisterCommand.
func Command() caddycmd.Command {
	return caddycmd.Command{
		Name:  "apisix",
		Usage: "export|import|routes|reset [--address <admin>] [--key <admin key>]",
		Short: "Manages the APISIX stream objects of a running node",
		Long: `
Drives the Admin API of a running node (by default the Caddy admin endpoint,
localhost:2019, or the admin address of --config):

  caddy apisix export [--format yaml|json] [--output <file>]
      writes every stored object as an APISIX standalone document
      (apisix.yaml, ending with #END; or JSON)
  caddy apisix import <file> [--format yaml|json]
      PUTs every object of a standalone document, referenced objects first
  caddy apisix routes
      a table of the stream routes: filters, upstream, the listeners that can
      hand each one a connection, connections counted by /metrics, warnings
  caddy apisix reset --yes
      deletes every stored object (objects from the Caddy config stay)

The admin key comes from --key or the APISIX_ADMIN_KEY environment variable.
The Admin API never returns private keys: export writes SSL objects without
key/keys and says so; back up Caddy's storage (<data dir>/apisix/) to keep them.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().StringP("address", "a", "", "the admin endpoint, host:port (default: from --config, else localhost:2019)")
			cmd.PersistentFlags().StringP("config", "c", "", "a config file to read the admin address from")
			cmd.PersistentFlags().String("adapter", "", "the adapter of --config")
			cmd.PersistentFlags().StringP("key", "k", "", "the admin key (default: $APISIX_ADMIN_KEY)")
			cmd.AddCommand(exportCommand(), importCommand(), routesCommand(), resetCommand())
		},
	}
}

// clientFrom builds the Admin API client from the persistent flags.
func clientFrom(cmd *cobra.Command) (*client, error) {
	f := cmd.Flags()
	addr, _ := f.GetString("address")
	cfgFile, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	key, _ := f.GetString("key")
	if key == "" {
		key = os.Getenv("APISIX_ADMIN_KEY")
	}
	admin, err := caddycmd.DetermineAdminAPIAddress(addr, nil, cfgFile, adapter)
	if err != nil {
		return nil, err
	}
	return &client{addr: admin, key: key}, nil
}
