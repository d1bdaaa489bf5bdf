//go:build linux

package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"time"
)

// Clients of Admin.Do. A fresh connection per request suits Caddy's
// admin endpoint: Caddy replaces its admin server on every config load,
// and a kept-alive connection to the old one would be reset under the
// next (non-retryable) request. A kept-alive connection suits a test of
// the early answer to an oversized body: with "Connection: close" the
// server resets the connection under the body's unsent rest.
var (
	freshClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	keepClient  = &http.Client{Timeout: 30 * time.Second}
)

// Admin is a client of one Caddy admin endpoint.
type Admin struct {
	// Addr is the endpoint's host:port.
	Addr string
	// KeepAlive reuses connections between requests; off, each request
	// has a connection of its own.
	KeepAlive bool
	// From is the client's source IP (e.g. "127.0.0.2"); "" lets the
	// kernel choose. It implies a connection per request.
	From string
}

// Do sends one request: the X-API-KEY header carries key unless it is "",
// body (nil: none) is sent as is, and hdr adds headers (a "Host" entry
// sets the Host header). It returns the status, the response headers and
// the body.
func (a Admin) Do(method, path, key string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+a.Addr+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := freshClient
	switch {
	case a.From != "":
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.From)}}
		client = &http.Client{Timeout: freshClient.Timeout, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
	case a.KeepAlive:
		client = keepClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// JSONContent is the header of a request with a JSON body.
var JSONContent = map[string]string{"Content-Type": "application/json"}
