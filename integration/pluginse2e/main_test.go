//go:build linux

// Package pluginse2e proves the protocol plugins end to end with real
// servers and clients: the syslog client and the syslog plugin against a
// real rsyslogd (imudp, imtcp and imtcp over TLS on loopback, records
// checked field by field; on TCP and UDP routes, on services, with the
// log_format of the conf or of plugin_metadata), a syslog server that is
// down or never reads, and mqtt-proxy with real mosquitto brokers and
// mosquitto_pub/mosquitto_sub (MQTT 3.1.1 and 5), chash on the client id,
// on stream_proxy listeners and in a layer4 server of the user's own.
//
// Run it from the module root, in a network namespace of its own:
//
//	unshare -n sh -c 'ip link set lo up && go test ./integration/pluginse2e/'
//
// rsyslogd (Debian rsyslog; rsyslog-gnutls for TLS), mosquitto,
// mosquitto_pub and mosquitto_sub (Debian mosquitto, mosquitto-clients)
// must be installed; scripts/test.sh installs them. Without them the
// tests skip, except with CI=true, where they fail. TestMain builds
// ./cmd/caddy once per run.
package pluginse2e

import (
	"os"
	"os/exec"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// caddyBin is the binary TestMain built.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(e2e.Main(m, "pluginse2e", func(bin, _ string) error {
		caddyBin = bin
		return nil
	}))
}

// need returns the path of a real program the test uses: missing, the
// test skips, or fails under CI=true (scripts/test.sh installs them).
func need(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true; Debian package %s): %v", name, pkg, err)
		}
		t.Skipf("%s not found (Debian package %s): %v", name, pkg, err)
	}
	return p
}
