package tlsx

import (
	"crypto/tls"
	"fmt"
	"testing"

	"github.com/caddy-apisix/stream/model"
)

// benchSSLs returns n SSL objects sharing one key pair (each is still
// parsed on its own), each with an exact name and a one-label wildcard.
func benchSSLs(b *testing.B, n int) []*model.SSL {
	b.Helper()
	c := newCert(b, "bench", nil, false, false)
	out := make([]*model.SSL, n)
	for i := range out {
		out[i] = &model.SSL{ID: model.ID(fmt.Sprint(i)), Cert: c.certPEM, Key: c.keyPEM,
			SNIs: []string{fmt.Sprintf("host%d.example.com", i), fmt.Sprintf("*.zone%d.example.com", i)}}
	}
	return out
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1, 10000} {
		x, err := NewCertIndex(benchSSLs(b, n), "")
		if err != nil {
			b.Fatal(err)
		}
		cases := []struct{ name, sni string }{
			{"exact", fmt.Sprintf("host%d.example.com", n-1)},
			{"exact-uppercase", fmt.Sprintf("HOST%d.example.com", n-1)},
			{"wildcard", fmt.Sprintf("a.zone%d.example.com", n-1)},
			{"miss", "nothing.example.org"},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("objects=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = x.Lookup(c.sni)
				}
			})
		}
		b.Run(fmt.Sprintf("objects=%d/GetConfigForClient", n), func(b *testing.B) {
			hello := &tls.ClientHelloInfo{ServerName: cases[0].sni}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.getConfigForClient(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRebuild measures NewCertIndexFrom over 10,000 objects after
// one object changed (one key parsed), against a cold build (all parsed).
func BenchmarkRebuild(b *testing.B) {
	ssls := benchSSLs(b, 10000)
	other := newCert(b, "other", nil, false, false)
	prev, err := NewCertIndex(ssls, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("objects=10000/one-changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			changed := *ssls[0]
			if i%2 == 0 {
				changed.Cert, changed.Key = other.certPEM, other.keyPEM
			}
			i++
			next := append([]*model.SSL{&changed}, ssls[1:]...)
			if prev, err = NewCertIndexFrom(prev, next, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("objects=10000/cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewCertIndex(ssls, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseClientHello(b *testing.B) {
	_, raw := captureHello(b, &tls.Config{ServerName: "www.example.com", NextProtos: []string{"h2"}})
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseClientHello(raw); err != nil {
			b.Fatal(err)
		}
	}
}
