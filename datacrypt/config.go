package datacrypt

import "fmt"

// Config is APISIX's apisix.data_encryption.
type Config struct {
	// EnableEncryptFields is APISIX's switch for plugin encrypt_fields.
	// No stream plugin declares any, so it has no effect here; accepted
	// for config compatibility. Default true.
	EnableEncryptFields *bool `json:"enable_encrypt_fields,omitempty"`
	// Keyring lists the AES keys, each exactly 16 (AES-128) or 32
	// (AES-256) bytes. Private keys are written encrypted with the first
	// and read with any. Absent: APISIX's default keyring; an empty list
	// stores keys in clear text.
	Keyring []string `json:"keyring,omitempty"`
}

// Build validates c and returns its keyring; a nil Config means APISIX's
// defaults.
func (c *Config) Build() (*Keyring, error) {
	keys := DefaultKeyring
	if c != nil && c.Keyring != nil {
		keys = c.Keyring
	}
	kr, err := NewKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("data_encryption.%w", err)
	}
	return kr, nil
}
