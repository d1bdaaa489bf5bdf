package stream

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apisix/stream/datacrypt"
)

// Deployment roles (APISIX's deployment.role).
const (
	roleTraditional  = "traditional"
	roleDataPlane    = "data_plane"
	roleControlPlane = "control_plane"
)

// Config providers.
const (
	providerEmbedded = "embedded"
	providerEtcd     = "etcd"
	providerYAML     = "yaml"
	providerJSON     = "json"
)

// deployment is the checked form of role, config_provider, config_file,
// etcd and data_encryption.
type deployment struct {
	role     string
	provider string
	// configFile is the standalone document (yaml and json providers).
	configFile string
	keyring    *datacrypt.Keyring
}

// provisionDeployment checks the deployment fields and fills in their
// defaults, as APISIX's CLI does (apisix/cli/schema.lua deployment_schema).
func (a *App) provisionDeployment(caddy.Context) error {
	d := deployment{role: a.Role, provider: a.ConfigProvider}
	switch d.role {
	case "":
		d.role = roleTraditional
	case roleTraditional, roleDataPlane, roleControlPlane:
	default:
		return fmt.Errorf("role: %q is not one of traditional, data_plane, control_plane", a.Role)
	}
	switch d.provider {
	case "":
		d.provider = providerEmbedded
		if a.Etcd != nil {
			d.provider = providerEtcd
		}
	case providerEmbedded, providerEtcd, providerYAML, providerJSON:
	default:
		return fmt.Errorf("config_provider: %q is not one of embedded, etcd, yaml, json", a.ConfigProvider)
	}
	switch {
	case d.provider == providerEtcd && a.Etcd == nil:
		return fmt.Errorf("config_provider etcd needs an etcd block with at least one host")
	case d.provider != providerEtcd && a.Etcd != nil:
		return fmt.Errorf("etcd is set but config_provider is %s: remove one of them", d.provider)
	case d.role == roleDataPlane && d.provider == providerEmbedded:
		return fmt.Errorf("role data_plane needs config_provider etcd, yaml or json: a data plane serves objects written elsewhere, not its own embedded store")
	case d.role == roleControlPlane && d.provider != providerEtcd:
		return fmt.Errorf("role control_plane needs config_provider etcd (got %s)", d.provider)
	case a.ConfigFile != "" && d.provider != providerYAML && d.provider != providerJSON:
		return fmt.Errorf("config_file is used by config_provider yaml or json only (config_provider is %s)", d.provider)
	}
	if a.Etcd != nil {
		if err := a.Etcd.Validate(); err != nil {
			return err
		}
	}
	kr, err := a.DataEncryption.Build()
	if err != nil {
		return err
	}
	d.keyring = kr
	if d.provider == providerYAML || d.provider == providerJSON {
		d.configFile = a.ConfigFile
		if d.configFile == "" {
			d.configFile = filepath.Join(caddy.AppConfigDir(), "apisix."+d.provider)
		}
	}
	a.deploy = d
	return nil
}
