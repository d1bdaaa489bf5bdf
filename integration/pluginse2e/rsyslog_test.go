//go:build linux

package pluginse2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// rsyslog is a real rsyslogd listening on loopback with imudp and imtcp,
// writing every message it receives, split into its RFC 5424 fields, to
// a file.
type rsyslog struct {
	UDP, TCP int
	TLS      int // the TLS input's port (input name "tls"), 0 without one
	out      string
	proc     *e2e.Proc
}

// record is one message as rsyslogd parsed it.
type record struct {
	Pri, Version, Timestamp, Hostname, AppName, ProcID, MsgID, SD, Input, Msg string
}

// recordTemplate writes the fields of record, in order, "|"-separated;
// the message comes last and may hold "|" itself.
const recordTemplate = `%pri%|%protocol-version%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%inputname%|%msg%\n`

func startRsyslog(t *testing.T) *rsyslog { return startRsyslogTLS(t, nil) }

// startRsyslogTLS is startRsyslog with, for a non-nil cert, a TLS input
// too (imtcp with the gtls stream driver, Debian rsyslog-gnutls) serving
// cert.
func startRsyslogTLS(t *testing.T, cert *e2e.Cert) *rsyslog {
	t.Helper()
	bin := need(t, "rsyslogd", "rsyslog")
	dir := t.TempDir()
	ports := e2e.FreePorts(t, 3)
	r := &rsyslog{UDP: ports[0], TCP: ports[1], out: filepath.Join(dir, "messages")}
	global := fmt.Sprintf("workDirectory=%q", dir)
	var tlsInput string
	if cert != nil {
		needGTLS(t)
		r.TLS = ports[2]
		certPath, keyPath := cert.Files(t, dir, "server")
		global += fmt.Sprintf(" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			certPath, certPath, keyPath)
		tlsInput = fmt.Sprintf(`input(type="imtcp" address="127.0.0.1" port="%d" name="tls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`, r.TLS)
	}
	conf := fmt.Sprintf(`global(%s)
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="%d")
input(type="imtcp" address="127.0.0.1" port="%d")
%s
template(name="fields" type="string" string="%s")
*.* action(type="omfile" file=%q template="fields")
`, global, r.UDP, r.TCP, tlsInput, recordTemplate, r.out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Dir = dir
	r.proc = e2e.Start(t, "rsyslogd", cmd, e2e.Options{})
	// Ready when a probe sent over UDP is in the file (TCP listens by then).
	probe := "<14>1 - - probe - - - ready\n"
	r.proc.WaitReady(20*time.Second, func() error {
		c, err := net.Dial("tcp", e2e.HostPort("127.0.0.1", r.TCP))
		if err != nil {
			return err
		}
		c.Close()
		u, err := net.Dial("udp", e2e.HostPort("127.0.0.1", r.UDP))
		if err != nil {
			return err
		}
		_, _ = u.Write([]byte(probe))
		u.Close()
		if len(r.records(true)) == 0 {
			return fmt.Errorf("no probe in %s yet", r.out)
		}
		return nil
	})
	return r
}

// records are the messages received so far, probes left out unless all.
func (r *rsyslog) records(all bool) []record {
	b, _ := os.ReadFile(r.out)
	var recs []record
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(line, "|", 10)
		if len(f) != 10 {
			continue
		}
		rec := record{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]}
		if rec.AppName == "probe" && !all {
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// wait returns the first n records of input ("imudp" or "imtcp") once
// they are there.
func (r *rsyslog) wait(t *testing.T, input string, n int) []record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []record
		for _, rec := range r.records(false) {
			if rec.Input == input {
				got = append(got, rec)
			}
		}
		if len(got) >= n {
			return got[:n]
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.out)
			t.Fatalf("rsyslogd got %d messages on %s, want %d: %+v\n%s", len(got), input, n, got, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needGTLS skips the test without rsyslog's gtls stream driver (Debian
// rsyslog-gnutls), or fails it under CI=true.
func needGTLS(t *testing.T) {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) > 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("rsyslog's gtls driver not found (CI=true; Debian package rsyslog-gnutls)")
	}
	t.Skip("rsyslog's gtls driver not found (Debian package rsyslog-gnutls)")
}
