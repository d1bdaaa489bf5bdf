package health

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-apisix/stream/model"
)

// Config is an upstream's `checks` with APISIX's defaults filled in
// (docs/apisix/upstreams.md#health-checks).
type Config struct {
	// Type is the active probe: "tcp", "http" (the default) or "https".
	Type string
	// Timeout bounds one probe (default 1 s).
	Timeout time.Duration
	// Concurrency bounds the probes running at once (default 10).
	Concurrency int
	// Host, when set, is the Host header and TLS server name of http(s)
	// probes; else the node's host is.
	Host string
	// Port, when set, is probed instead of each node's own port.
	Port int
	// HTTPPath is the path http(s) probes request (default "/").
	HTTPPath string
	// ReqHeaders are extra header lines of http(s) probes.
	ReqHeaders []string
	// VerifyCertificate checks the certificate in https probes (default true).
	VerifyCertificate bool

	// HealthyInterval is the probe period of healthy nodes (default 1 s).
	HealthyInterval time.Duration
	// HealthySuccesses make an unhealthy node healthy (default 2).
	HealthySuccesses int
	// HealthyStatuses are the probe statuses counted as success (default
	// any 2xx or 3xx).
	HealthyStatuses []int
	// UnhealthyInterval is the probe period of unhealthy nodes (default 1 s).
	UnhealthyInterval time.Duration
	// UnhealthyTCPFailures make a node unhealthy (default 2).
	UnhealthyTCPFailures int
	// UnhealthyTimeouts make a node unhealthy (default 3).
	UnhealthyTimeouts int
	// UnhealthyHTTPFailures make a node unhealthy (default 5).
	UnhealthyHTTPFailures int
	// UnhealthyStatuses are the probe statuses counted as HTTP failures
	// (default: every status that is not a success).
	UnhealthyStatuses []int

	// Passive enables the passive reports (ReportFailure, ReportSuccess);
	// APISIX ignores them without `checks.passive`.
	Passive bool
	// PassiveSuccesses make a node healthy (default 5).
	PassiveSuccesses int
	// PassiveTCPFailures make a node unhealthy (default 2).
	PassiveTCPFailures int
	// PassiveTimeouts make a node unhealthy (default 7).
	PassiveTimeouts int
}

// maxCounter is the largest threshold APISIX accepts (1-254).
const maxCounter = 254

// NewConfig validates checks and fills in the defaults. Zero values mean
// "unset", as the model's omitempty fields do.
func NewConfig(checks *model.HealthChecks) (Config, error) {
	if checks == nil || checks.Active == nil {
		return Config{}, errors.New("health check: checks.active is required")
	}
	a := checks.Active
	c := Config{
		Type:                  a.Type,
		Concurrency:           a.Concurrency,
		Host:                  a.Host,
		Port:                  a.Port,
		HTTPPath:              a.HTTPPath,
		ReqHeaders:            a.ReqHeaders,
		VerifyCertificate:     a.HTTPSVerifyCertificate == nil || *a.HTTPSVerifyCertificate,
		HealthySuccesses:      2,
		UnhealthyTCPFailures:  2,
		UnhealthyTimeouts:     3,
		UnhealthyHTTPFailures: 5,
	}
	var err error
	if c.Timeout, err = seconds("active.timeout", a.Timeout, time.Second); err != nil {
		return Config{}, err
	}
	hi, ui := 0.0, 0.0
	if h := a.Healthy; h != nil {
		hi = h.Interval
		if err := count("active.healthy.successes", h.Successes, &c.HealthySuccesses); err != nil {
			return Config{}, err
		}
		c.HealthyStatuses = h.HTTPStatuses
	}
	if u := a.Unhealthy; u != nil {
		ui = u.Interval
		for _, f := range []struct {
			name string
			v    int
			dst  *int
		}{
			{"active.unhealthy.tcp_failures", u.TCPFailures, &c.UnhealthyTCPFailures},
			{"active.unhealthy.timeouts", u.Timeouts, &c.UnhealthyTimeouts},
			{"active.unhealthy.http_failures", u.HTTPFailures, &c.UnhealthyHTTPFailures},
		} {
			if err := count(f.name, f.v, f.dst); err != nil {
				return Config{}, err
			}
		}
		c.UnhealthyStatuses = u.HTTPStatuses
	}
	if c.HealthyInterval, err = seconds("active.healthy.interval", hi, time.Second); err != nil {
		return Config{}, err
	}
	if c.UnhealthyInterval, err = seconds("active.unhealthy.interval", ui, time.Second); err != nil {
		return Config{}, err
	}
	switch c.Type {
	case "":
		c.Type = "http"
	case "tcp", "http", "https":
	default:
		return Config{}, fmt.Errorf("health check: invalid active.type %q (want tcp, http or https)", c.Type)
	}
	switch {
	case c.Concurrency == 0:
		c.Concurrency = 10
	case c.Concurrency < 0:
		return Config{}, fmt.Errorf("health check: invalid active.concurrency %d", c.Concurrency)
	}
	if c.Port < 0 || c.Port > 65535 {
		return Config{}, fmt.Errorf("health check: invalid active.port %d", c.Port)
	}
	if c.HTTPPath == "" {
		c.HTTPPath = "/"
	}
	if err := requestSafe("active.http_path", c.HTTPPath); err != nil {
		return Config{}, err
	}
	if err := requestSafe("active.host", c.Host); err != nil {
		return Config{}, err
	}
	for _, h := range c.ReqHeaders {
		if err := requestSafe("active.req_headers", h); err != nil {
			return Config{}, err
		}
	}
	for _, s := range slices.Concat(c.HealthyStatuses, c.UnhealthyStatuses) {
		if s < 200 || s > 599 {
			return Config{}, fmt.Errorf("health check: invalid http status %d (want 200-599)", s)
		}
	}
	if p := checks.Passive; p != nil {
		c.Passive = true
		c.PassiveSuccesses, c.PassiveTCPFailures, c.PassiveTimeouts = 5, 2, 7
		switch p.Type {
		case "", "tcp", "http", "https":
		default:
			return Config{}, fmt.Errorf("health check: invalid passive.type %q (want tcp, http or https)", p.Type)
		}
		if p.Healthy != nil {
			if err := count("passive.healthy.successes", p.Healthy.Successes, &c.PassiveSuccesses); err != nil {
				return Config{}, err
			}
		}
		if u := p.Unhealthy; u != nil {
			if err := count("passive.unhealthy.tcp_failures", u.TCPFailures, &c.PassiveTCPFailures); err != nil {
				return Config{}, err
			}
			if err := count("passive.unhealthy.timeouts", u.Timeouts, &c.PassiveTimeouts); err != nil {
				return Config{}, err
			}
		}
	}
	return c, nil
}

// seconds converts a field in seconds; 0 means def.
func seconds(name string, v float64, def time.Duration) (time.Duration, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0 || v > 86400:
		return 0, fmt.Errorf("health check: invalid %s %v (want seconds > 0)", name, v)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// count sets *dst to a threshold; 0 keeps the default.
func count(name string, v int, dst *int) error {
	switch {
	case v == 0:
		return nil
	case v < 1 || v > maxCounter:
		return fmt.Errorf("health check: invalid %s %d (want 1-%d)", name, v, maxCounter)
	}
	*dst = v
	return nil
}

// requestSafe refuses values that would split the probe request.
func requestSafe(name, v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' || v[i] == 0 {
			return fmt.Errorf("health check: invalid %s %q (control character)", name, v)
		}
	}
	return nil
}
