//go:build linux

package pluginse2e

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/syslog"
)

// checkRecord checks a record's RFC 5424 header field by field, as APISIX
// sends it (apisix/utils/rfc5424.lua: facility SYSLOG, severity INFO, no
// host in stream, app "apisix", the worker's pid, no msgid, no structured
// data) with a timestamp within [from, to], and returns its JSON entry.
func checkRecord(t *testing.T, rec record, pid int, from, to time.Time) map[string]any {
	t.Helper()
	want := record{Pri: "46", Version: "1", Hostname: "-", AppName: "apisix", ProcID: strconv.Itoa(pid), MsgID: "-", SD: "-"}
	got := rec
	got.Timestamp, got.Input, got.Msg = "", "", ""
	if got != want {
		t.Errorf("header fields %+v, want %+v", got, want)
	}
	ts, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
	if err != nil || len(rec.Timestamp) != len("2006-01-02T15:04:05.000Z") || rec.Timestamp[len(rec.Timestamp)-1] != 'Z' {
		t.Errorf("timestamp %q is not UTC with milliseconds: %v", rec.Timestamp, err)
	} else if ts.Before(from.Truncate(time.Millisecond)) || ts.After(to) {
		t.Errorf("timestamp %s outside [%s, %s]", ts, from, to)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(rec.Msg), &entry); err != nil {
		t.Fatalf("message %q is not a JSON entry: %v", rec.Msg, err)
	}
	return entry
}

// The syslog client against a real rsyslogd, over UDP and TCP: batches of
// three, every entry a message of its own, every field as APISIX sends.
func TestSyslogClientToRsyslog(t *testing.T) {
	rs := startRsyslog(t)
	for _, tt := range []struct {
		network, input string
		port           int
	}{
		{"udp", "imudp", rs.UDP},
		{"tcp", "imtcp", rs.TCP},
	} {
		t.Run(tt.network, func(t *testing.T) {
			c, err := syslog.New(syslog.Config{Network: tt.network, Host: "127.0.0.1", Port: tt.port,
				BatchMaxSize: 3, FlushLimit: 1, InactiveTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			from := time.Now()
			for i := range 4 { // one full batch, one sent by the inactive timeout
				if err := c.Log(map[string]any{"seq": i, "client_ip": "127.0.0.1", "route": "r/" + tt.network,
					"nested": map[string]any{"port": "9100"}}); err != nil {
					t.Fatal(err)
				}
			}
			recs := rs.wait(t, tt.input, 4)
			to := time.Now()
			for i, rec := range recs {
				e := checkRecord(t, rec, os.Getpid(), from, to)
				nested, _ := e["nested"].(map[string]any)
				if e["seq"] != float64(i) || e["client_ip"] != "127.0.0.1" || e["route"] != "r/"+tt.network ||
					len(e) != 4 || nested["port"] != "9100" {
					t.Errorf("message %d entry %v", i, e)
				}
			}
			// the counter follows the write that rsyslogd already read
			for i := 0; c.Stats().Sent < 4 && i < 1000; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if st := c.Stats(); st.Sent != 4 || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
