package etcdstore

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultPrefix is APISIX's default etcd.prefix.
const DefaultPrefix = "/apisix"

// DefaultTimeout is APISIX's default etcd.timeout.
const DefaultTimeout = 30 * time.Second

// Config is APISIX's deployment.etcd (apisix/cli/schema.lua etcd_schema).
type Config struct {
	// Host lists the etcd endpoints, http:// or https:// URLs without a
	// path. At least one; a single string is accepted, as APISIX does.
	Host Hosts `json:"host,omitempty"`
	// Prefix is the key prefix of every object. Default "/apisix".
	Prefix string `json:"prefix,omitempty"`
	// Timeout bounds each etcd request (dial, read, write): a duration
	// string ("30s") or a number of seconds as in APISIX's config.yaml.
	// Default 30s.
	Timeout Seconds `json:"timeout,omitempty"`
	// User and Password enable etcd authentication; both or neither.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// TLS configures https endpoints.
	TLS *TLS `json:"tls,omitempty"`
}

// TLS is deployment.etcd.tls, plus ca.
type TLS struct {
	// Cert and Key are the PEM files of a client certificate; both or
	// neither.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// CA is a PEM file of the CAs that sign the etcd servers'
	// certificates (APISIX uses apisix.ssl.ssl_trusted_certificate).
	// Default: the system roots.
	CA string `json:"ca,omitempty"`
	// Verify checks the servers' certificates. Default true.
	Verify *bool `json:"verify,omitempty"`
	// SNI is the server name sent and verified. Default: the URL host.
	SNI string `json:"sni,omitempty"`
}

// Hosts is a list of endpoint URLs that also accepts one JSON string.
type Hosts []string

// UnmarshalJSON accepts a string or a list of strings.
func (h *Hosts) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*h = Hosts{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("etcd.host: want a URL or a list of URLs")
	}
	*h = l
	return nil
}

// Seconds is a duration written as a Go duration string or a number of
// seconds.
type Seconds time.Duration

// UnmarshalJSON accepts "30s" or 30.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		return s.parse(str)
	}
	return s.parse(string(b))
}

// MarshalJSON writes the duration string.
func (s Seconds) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(s).String()) }

func (s *Seconds) parse(str string) error {
	if n, err := strconv.ParseFloat(str, 64); err == nil {
		*s = Seconds(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(str)
	if err != nil {
		return fmt.Errorf("etcd.timeout: %q is not a duration or a number of seconds", str)
	}
	*s = Seconds(d)
	return nil
}

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if len(c.Host) == 0 {
		return errors.New("etcd.host: at least one URL is required")
	}
	for i, h := range c.Host {
		if err := checkURL(h); err != nil {
			return fmt.Errorf("etcd.host[%d]: %v", i, err)
		}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(c.Prefix, "/") || (len(c.Prefix) > 1 && strings.HasSuffix(c.Prefix, "/")) {
		return fmt.Errorf("etcd.prefix: %q must start with / and not end with /", c.Prefix)
	}
	if c.Timeout == 0 {
		c.Timeout = Seconds(DefaultTimeout)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("etcd.timeout: must be positive, got %s", time.Duration(c.Timeout))
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("etcd: user and password go together")
	}
	if t := c.TLS; t != nil {
		if (t.Cert == "") != (t.Key == "") {
			return errors.New("etcd.tls: cert and key go together")
		}
		if _, err := t.Config(); err != nil {
			return err
		}
	}
	return nil
}

func checkURL(h string) error {
	u, err := url.Parse(h)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", h, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", h)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q: no host", h)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: bad port", h)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: want scheme://host:port only", h)
	}
	return nil
}

// Config builds the client TLS configuration: it reads the files.
func (t *TLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.SNI}
	if t.Verify != nil && !*t.Verify {
		cfg.InsecureSkipVerify = true
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd.tls: client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("etcd.tls.ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd.tls.ca: %s holds no PEM certificate", t.CA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
