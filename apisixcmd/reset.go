package apisixcmd

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func resetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reset --yes",
		Short: "Deletes every stored object through the Admin API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			yes, _ := cmd.Flags().GetBool("yes")
			if !yes {
				return fmt.Errorf("reset deletes every stored stream route, service, upstream, SSL and plugin metadata; " +
					"run caddy apisix export first to keep a copy, then pass --yes")
			}
			c, err := clientFrom(cmd)
			if err != nil {
				return err
			}
			n, kept, err := reset(c)
			fmt.Fprintf(os.Stderr, "deleted %d objects", n)
			if kept > 0 {
				fmt.Fprintf(os.Stderr, "; %d from the Caddy config kept (change them there)", kept)
			}
			fmt.Fprintln(os.Stderr)
			return err
		},
	}
	cmd.Flags().Bool("yes", false, "really delete everything")
	return cmd
}

// reset deletes every object, referring objects first; objects from the
// Caddy config (read-only) are counted in kept.
func reset(c *client) (deleted, kept int, err error) {
	for i := len(kinds) - 1; i >= 0; i-- {
		kind := kinds[i]
		items, _, found, err := c.list(kind)
		if err != nil {
			return deleted, kept, err
		}
		if !found {
			continue
		}
		for _, it := range items {
			id := idString(it.Value["id"])
			_, _, err := c.do(http.MethodDelete, "/apisix/admin/"+kind+"/"+url.PathEscape(id), nil)
			switch {
			case err == nil:
				deleted++
			case strings.Contains(err.Error(), "is defined in the Caddy config"):
				kept++
			default:
				return deleted, kept, err
			}
		}
	}
	return deleted, kept, nil
}
