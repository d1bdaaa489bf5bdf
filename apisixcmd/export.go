package apisixcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-apisix/stream/standalone"
)

func exportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export [--format yaml|json] [--output <file>]",
		Short: "Writes every stored object as an APISIX standalone document",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := clientFrom(cmd)
			if err != nil {
				return err
			}
			format, _ := cmd.Flags().GetString("format")
			out, _ := cmd.Flags().GetString("output")
			if format == "" {
				format = formatOf(out)
			}
			doc, notes, err := exportDocument(c)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(os.Stderr, "note:", n)
			}
			b, err := encodeDocument(doc, format)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = os.Stdout.Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o600)
		},
	}
	cmd.Flags().StringP("format", "f", "", "yaml (ends with #END) or json (default: from --output's extension, else yaml)")
	cmd.Flags().StringP("output", "o", "", "the file to write (default: standard output)")
	return cmd
}

func importCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import <file> [--format yaml|json]",
		Short: "PUTs every object of an APISIX standalone document through the Admin API",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := clientFrom(cmd)
			if err != nil {
				return err
			}
			format, _ := cmd.Flags().GetString("format")
			if format == "" {
				format = formatOf(args[0])
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			doc, err := standalone.Parse(data, standalone.Format(format), os.LookupEnv)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			n, err := importDocument(c, doc, func(s string) { fmt.Fprintln(os.Stderr, s) })
			fmt.Fprintf(os.Stderr, "imported %d objects\n", n)
			return err
		},
	}
	cmd.Flags().StringP("format", "f", "", "yaml or json (default: from the file's extension, else yaml)")
	return cmd
}

// formatOf picks the document format from a file name.
func formatOf(name string) string {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		return string(standalone.JSON)
	}
	return string(standalone.YAML)
}

// exportDocument reads every collection the node serves into a standalone
// document. notes say what the document lacks.
func exportDocument(c *client) (standalone.Document, []string, error) {
	doc := standalone.Document{}
	var notes []string
	for _, kind := range kinds {
		items, _, found, err := c.list(kind)
		if err != nil {
			return nil, nil, err
		}
		if !found {
			continue
		}
		list := make([]any, 0, len(items))
		for _, it := range items {
			if kind == "ssls" {
				notes = append(notes, fmt.Sprintf("ssl %v is exported without its private key (the Admin API never returns it): "+
					"add key (or keys) before importing, or restore Caddy's storage directory instead", it.Value["id"]))
			}
			list = append(list, it.Value)
		}
		if len(list) > 0 {
			doc[kind] = list
		}
	}
	return doc, notes, nil
}

// encodeDocument writes a document as APISIX reads apisix.yaml (a final
// #END line) or apisix.json.
func encodeDocument(doc standalone.Document, format string) ([]byte, error) {
	switch standalone.Format(format) {
	case standalone.JSON:
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	case standalone.YAML:
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(standalone.Plain(doc)); err != nil {
			return nil, err
		}
		buf.WriteString("#END\n")
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown format %q (want yaml or json)", format)
}

// importDocument PUTs every object of doc, referenced objects first, and
// returns how many it wrote. It goes on after a failed object and returns
// an error naming every failure.
func importDocument(c *client, doc standalone.Document, log func(string)) (int, error) {
	known := map[string]bool{"plugins": true}
	for _, k := range kinds {
		known[k] = true
	}
	var failed []string
	for key, v := range doc {
		if known[key] || strings.HasSuffix(key, "_conf_version") {
			continue
		}
		if l, ok := v.([]any); ok && len(l) == 0 {
			continue
		}
		failed = append(failed, key+": not served by this gateway (stream objects only)")
	}
	n := 0
	for _, kind := range kinds {
		v, ok := doc[kind]
		if !ok || v == nil {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			failed = append(failed, kind+": not a list")
			continue
		}
		for i, e := range list {
			obj, ok := e.(map[string]any)
			if !ok {
				failed = append(failed, fmt.Sprintf("%s[%d]: not an object", kind, i))
				continue
			}
			id := idString(obj["id"])
			if id == "" {
				failed = append(failed, fmt.Sprintf("%s[%d]: no id", kind, i))
				continue
			}
			// set by the server; the Admin API refuses them in a body
			delete(obj, "create_time")
			delete(obj, "update_time")
			body, err := json.Marshal(obj)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s %s: %v", kind, id, err))
				continue
			}
			hdr, _, err := c.do(http.MethodPut, "/apisix/admin/"+kind+"/"+url.PathEscape(id), bytes.NewReader(body))
			if err != nil && strings.Contains(err.Error(), "is defined in the Caddy config") {
				log(fmt.Sprintf("skipped %s %s: defined in the Caddy config of this node", kind, id))
				continue
			}
			if err != nil {
				failed = append(failed, err.Error())
				continue
			}
			n++
			for _, w := range hdr.Values("X-APISIX-Warning") {
				log("warning: " + w)
			}
		}
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("%d object(s) not imported:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return n, nil
}

// idString formats a document id (a string or a number) as its URL form.
func idString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
