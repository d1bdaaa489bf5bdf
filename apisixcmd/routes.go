package apisixcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/caddy-apisix/stream/listen"
	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/router"
)

func routesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Lists the stream routes with their listeners, connections and warnings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := clientFrom(cmd)
			if err != nil {
				return err
			}
			rows, err := routeRows(c)
			if err != nil {
				return err
			}
			return writeTable(os.Stdout, rows)
		},
	}
	return cmd
}

// routeRow is one line of the routes table.
type routeRow struct {
	ID, Filters, Upstream, Listeners, Hits string
	Warnings                               []string
}

// routeRows gathers the table: the routes and their warnings from the
// Admin API, the listeners from the node's config (/config/apps/apisix on
// Caddy's admin endpoint) and the connections from /metrics. Listeners and
// hits read "?" when the endpoint does not serve them (admin_listen).
func routeRows(c *client) ([]routeRow, error) {
	items, hdr, found, err := c.list("stream_routes")
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the node serves no stream routes (stream mode is off)")
	}
	warnings := map[string][]string{}
	for _, w := range hdr.Values("X-APISIX-Warning") {
		// "stream route <id> ..."
		rest := strings.TrimPrefix(w, "stream route ")
		id, _, _ := strings.Cut(rest, " ")
		warnings[id] = append(warnings[id], rest[len(id)+1:])
	}
	listeners, fallbackSNI, lerr := nodeListeners(c)
	hits, herr := connectionTotals(c)
	var rows []routeRow
	for _, it := range items {
		raw, _ := json.Marshal(it.Value)
		id := idString(it.Value["id"])
		row := routeRow{ID: id, Listeners: "?", Hits: "?", Warnings: warnings[id]}
		sr, err := model.ParseStreamRoute(raw)
		if err != nil {
			row.Filters = "(unreadable: " + err.Error() + ")"
			rows = append(rows, row)
			continue
		}
		row.Filters = filtersText(sr)
		row.Upstream = upstreamText(sr)
		if lerr == nil {
			r, _, err := router.FiltersOf(id, sr)
			if err == nil {
				var on []string
				for _, l := range listeners {
					if router.Reaches(&r, l, nil, fallbackSNI) {
						on = append(on, l.String())
					}
				}
				row.Listeners = strings.Join(on, " ")
				if len(on) == 0 {
					row.Listeners = "-"
				}
			}
		}
		if herr == nil {
			row.Hits = fmt.Sprint(hits[id])
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func filtersText(sr *model.StreamRoute) string {
	var f []string
	if sr.RemoteAddr != "" {
		f = append(f, "remote_addr="+sr.RemoteAddr)
	}
	if sr.ServerAddr != "" {
		f = append(f, "server_addr="+sr.ServerAddr)
	}
	if sr.ServerPort != 0 {
		f = append(f, fmt.Sprintf("server_port=%d", sr.ServerPort))
	}
	if sr.SNI != "" {
		f = append(f, "sni="+sr.SNI)
	}
	if len(sr.SNIs) > 0 {
		f = append(f, "snis="+strings.Join(sr.SNIs, ","))
	}
	if len(f) == 0 {
		return "(any)"
	}
	return strings.Join(f, " ")
}

func upstreamText(sr *model.StreamRoute) string {
	switch {
	case sr.UpstreamID != "":
		return "upstream " + string(sr.UpstreamID)
	case sr.Upstream != nil:
		var nodes []string
		for _, n := range sr.Upstream.Nodes {
			nodes = append(nodes, n.Host+":"+fmt.Sprint(n.Port))
		}
		return strings.Join(nodes, ",")
	case sr.ServiceID != "":
		return "service " + string(sr.ServiceID)
	}
	return "-"
}

// nodeListeners reads the stream_proxy listeners from the node's config.
func nodeListeners(c *client) ([]router.Listener, string, error) {
	resp, err := caddycmd.AdminAPIRequest(c.addr, http.MethodGet, "/config/apps/apisix", nil, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var cfg struct {
		StreamProxy *struct {
			TCP []listen.Entry `json:"tcp"`
			UDP []listen.Entry `json:"udp"`
		} `json:"stream_proxy"`
		FallbackSNI string `json:"fallback_sni"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, "", err
	}
	var out []router.Listener
	if cfg.StreamProxy == nil {
		return out, cfg.FallbackSNI, nil
	}
	for _, group := range []struct {
		network string
		entries []listen.Entry
	}{{"tcp", cfg.StreamProxy.TCP}, {"udp", cfg.StreamProxy.UDP}} {
		for _, e := range group.entries {
			addrs, err := e.Expand()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				l := router.Listener{Network: group.network, Port: a.Port, TLS: e.TLS || e.TLSPassthrough}
				l.Addr, _ = netip.ParseAddr(a.Host)
				out = append(out, l)
			}
		}
	}
	return out, cfg.FallbackSNI, nil
}

// connectionTotals reads apisix_stream_connection_total per route from
// the node's /metrics.
func connectionTotals(c *client) (map[string]float64, error) {
	resp, err := caddycmd.AdminAPIRequest(c.addr, http.MethodGet, "/metrics", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return parseConnectionTotals(b)
}

// parseConnectionTotals sums apisix_stream_connection_total by its route
// label in a Prometheus text exposition.
func parseConnectionTotals(b []byte) (map[string]float64, error) {
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	fam := families["apisix_stream_connection_total"]
	if fam == nil {
		return out, nil
	}
	for _, m := range fam.GetMetric() {
		route := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				route = l.GetValue()
			}
		}
		switch {
		case m.GetCounter() != nil:
			out[route] += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			out[route] += m.GetUntyped().GetValue()
		case m.GetGauge() != nil:
			out[route] += m.GetGauge().GetValue()
		}
	}
	return out, nil
}

func writeTable(w io.Writer, rows []routeRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFILTERS\tUPSTREAM\tLISTENERS\tCONNECTIONS\tWARNINGS")
	for _, r := range rows {
		warn := "-"
		if len(r.Warnings) > 0 {
			sort.Strings(r.Warnings)
			warn = strings.Join(r.Warnings, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Filters, r.Upstream, r.Listeners, r.Hits, warn)
	}
	return tw.Flush()
}
