package stream

import (
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apisix/stream/internal/testcert"
)

// TestLoadedConfig guards the reflection in loadedConfig: the context
// Caddy provisions an app with must yield that config.
func TestLoadedConfig(t *testing.T) {
	want := &caddy.Config{Admin: &caddy.AdminConfig{Listen: "127.0.0.1:1"}}
	ctx, err := caddy.ProvisionContext(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadedConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("loadedConfig = %p, want %p", got, want)
	}
}

func TestCheckAdminAccess(t *testing.T) {
	tests := []struct {
		admin       *caddy.AdminConfig
		adminListen string
		wantErr     string
	}{
		{nil, "", ""}, // default localhost:2019
		{&caddy.AdminConfig{Listen: "127.0.0.1:2019"}, "", ""},
		{&caddy.AdminConfig{Listen: "127.0.0.2:2019"}, "", ""},
		{&caddy.AdminConfig{Listen: "[::1]:2019"}, "", ""},
		{&caddy.AdminConfig{Listen: "localhost:2019"}, "0.0.0.0:9180", ""},
		{&caddy.AdminConfig{Listen: "unix//run/caddy-admin.sock"}, "", ""},
		{&caddy.AdminConfig{Disabled: true, Listen: "0.0.0.0:2019"}, "", ""},
		{&caddy.AdminConfig{Listen: "0.0.0.0:2019"}, "", `admin.listen 0.0.0.0:2019 is beyond loopback`},
		{&caddy.AdminConfig{Listen: ":2019"}, "", `"admin_listen"`},
		{&caddy.AdminConfig{Listen: "192.0.2.1:2019"}, "", `"admin.remote"`},
		{&caddy.AdminConfig{Listen: "[::]:2019"}, "", "beyond loopback"},
		{&caddy.AdminConfig{Listen: "example.com:2019"}, "", "beyond loopback"},
		{&caddy.AdminConfig{Listen: "127.0.0.1:9180"}, "127.0.0.1:9180", "admin_listen 127.0.0.1:9180 is Caddy's admin endpoint"},
	}
	for _, tt := range tests {
		var al *caddy.NetworkAddress
		if tt.adminListen != "" {
			var err error
			if al, err = parseAdminListen(tt.adminListen); err != nil {
				t.Fatal(err)
			}
		}
		err := checkAdminAccess(&caddy.Config{Admin: tt.admin}, al)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.admin, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%+v: err = %v, want %q", tt.admin, err, tt.wantErr)
		}
	}
}

func TestParseAdminListen(t *testing.T) {
	for in, wantErr := range map[string]string{
		"0.0.0.0:9180":     "",
		":9180":            "",
		"unix//tmp/a.sock": "",
		"127.0.0.1:1-2":    "want exactly one address",
		"udp/:9180":        "want a TCP address",
		"127.0.0.1:99999":  "admin_listen:",
	} {
		_, err := parseAdminListen(in)
		if wantErr == "" && err != nil {
			t.Errorf("%s: %v", in, err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: err = %v, want %q", in, err, wantErr)
		}
	}
}

// TestProvisionAdminKeyPlaceholders: {env.*} and {file.*} keys resolve at
// provision; a missing variable or file is an error naming the key.
func TestProvisionAdminKeyPlaceholders(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("from-file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APISIX_TEST_KEY", "from-env-key")
	tests := []struct {
		key, want, wantErr string
	}{
		{"plain-key", "plain-key", ""},
		{"{env.APISIX_TEST_KEY}", "from-env-key", ""},
		{"{file." + keyFile + "}", "from-file-key", ""},
		{"{env.APISIX_TEST_UNSET_KEY}", "", "admin_key[0] (admin): evaluated placeholder {env.APISIX_TEST_UNSET_KEY} is empty"},
		{"{file." + filepath.Join(dir, "missing") + "}", "", "missing or empty file"},
	}
	for _, tt := range tests {
		app := map[string]any{"admin_key": []any{map[string]any{"name": "admin", "key": tt.key}}}
		raw, _ := json.Marshal(app)
		ctx, err := caddy.ProvisionContext(&caddy.Config{
			Admin:   &caddy.AdminConfig{Disabled: true},
			AppsRaw: caddy.ModuleMap{"apisix": raw},
		})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.key, err)
			continue
		}
		a, err := ctx.App("apisix")
		if err != nil {
			t.Fatal(err)
		}
		if got := a.(*App).admin.Keys[0].Key; got != tt.want {
			t.Errorf("%s: key %q, want %q", tt.key, got, tt.want)
		}
	}
}

// TestProvisionRefusesOpenAdmin: the apisix app refuses a config whose
// Caddy admin endpoint listens on all interfaces.
func TestProvisionRefusesOpenAdmin(t *testing.T) {
	_, err := caddy.ProvisionContext(&caddy.Config{
		Admin:   &caddy.AdminConfig{Listen: "0.0.0.0:2019"},
		AppsRaw: caddy.ModuleMap{"apisix": json.RawMessage(`{}`)},
	})
	if err == nil || !strings.Contains(err.Error(), "admin_listen") || !strings.Contains(err.Error(), "admin.remote") {
		t.Fatalf("err = %v, want a refusal naming admin_listen and admin.remote", err)
	}
}

// TestAdminModuleRefusesOpenAdmin: the admin module, which Caddy
// provisions before it binds a new admin endpoint, refuses one beyond
// loopback when the config has an apisix app, and only then.
func TestAdminModuleRefusesOpenAdmin(t *testing.T) {
	cfg := &caddy.Config{Admin: &caddy.AdminConfig{Listen: "0.0.0.0:2019"}}
	ctx, err := caddy.ProvisionContext(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := new(AdminAPI).Provision(ctx); err != nil {
		t.Fatalf("without an apisix app: %v", err)
	}
	cfg.AppsRaw = caddy.ModuleMap{"apisix": json.RawMessage(`{}`)}
	err = new(AdminAPI).Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "admin_listen") || !strings.Contains(err.Error(), "admin.remote") {
		t.Fatalf("err = %v, want a refusal naming admin_listen and admin.remote", err)
	}
}

// admin_tls refuses files it cannot use, naming them and never their
// content; a ca_file makes client certificates required.
func TestAdminTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := testcert.SelfSigned(t, "admin.test")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := write("admin.crt", certPEM), write("admin.key", keyPEM)
	ca, notPEM := write("ca.crt", certPEM), write("junk.crt", "not a certificate")
	for _, c := range []struct {
		name       string
		tls        AdminTLS
		err        string
		clientAuth tls.ClientAuthType
	}{
		{"server only", AdminTLS{CertFile: cert, KeyFile: key}, "", tls.NoClientCert},
		{"mutual", AdminTLS{CertFile: cert, KeyFile: key, CAFile: ca}, "", tls.RequireAndVerifyClientCert},
		{"no key", AdminTLS{CertFile: cert}, "cert_file and key_file are both required", 0},
		{"missing ca", AdminTLS{CertFile: cert, KeyFile: key, CAFile: filepath.Join(dir, "none.crt")}, "admin_tls: ca_file: open " + filepath.Join(dir, "none.crt"), 0},
		{"ca without PEM", AdminTLS{CertFile: cert, KeyFile: key, CAFile: notPEM}, "admin_tls: ca_file " + notPEM + " holds no PEM certificate", 0},
	} {
		cfg, err := c.tls.config()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
			} else if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("%s: the error holds the key: %v", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cfg.ClientAuth != c.clientAuth || (c.clientAuth != tls.NoClientCert) != (cfg.ClientCAs != nil) {
			t.Errorf("%s: client auth %v with CAs %v, want %v", c.name, cfg.ClientAuth, cfg.ClientCAs != nil, c.clientAuth)
		}
	}
}
