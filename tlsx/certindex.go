package tlsx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caddy-apisix/stream/model"
)

// CertIndex selects the SSL object for a server name as APISIX does
// (docs/apisix/tls.md#certificate-selection): exact names first, then a one-label wildcard
// ("*.test.com" covers "a.test.com", neither "a.b.test.com" nor
// "test.com"), then "*". Lookups are a few map probes whatever the number
// of objects. A CertIndex is immutable and safe for concurrent use; build a
// new one per registry snapshot with NewCertIndexFrom.
type CertIndex struct {
	exact map[string]*Entry
	// wild maps a wildcard pattern minus its leading "*" (".test.com")
	// to its entry; wildLens are the distinct key lengths, longest first,
	// so the longest matching suffix wins.
	wild     map[string]*Entry
	wildLens []int
	star     *Entry // the "*" pattern
	fallback string
	byID     map[model.ID]*Entry // every entry, for reuse by the next build
	config   *tls.Config
}

// NewCertIndexFrom builds an index of the server-type, enabled SSL objects
// in ssls. fallbackSNI (apisix.ssl.fallback_sni) is the name assumed for
// clients that send no SNI; empty means such handshakes fail. When two
// objects claim the same name the first in ssls wins.
//
// An object whose key material cannot be parsed is left out, and the
// returned error (joined per object, each naming the ssl id) says so; the
// index is still returned and usable with the others.
//
// The parsed entries of prev (may be nil) are reused for objects whose id
// and key material (cert, key, certs, keys, client, ssl_protocols) are
// unchanged, so a rebuild after one change parses one object, not all.
func NewCertIndexFrom(prev *CertIndex, ssls []*model.SSL, fallbackSNI string) (*CertIndex, error) {
	x := &CertIndex{
		exact:    make(map[string]*Entry, len(ssls)),
		wild:     make(map[string]*Entry),
		fallback: NormalizeSNI(fallbackSNI),
		byID:     make(map[model.ID]*Entry, len(ssls)),
	}
	var errs []error
	for _, s := range ssls {
		if s == nil || s.IsClient() || !s.Enabled() {
			continue
		}
		names := s.Names()
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("ssl %s: no sni or snis", s.ID))
			continue
		}
		src := sourceOf(s)
		e := x.byID[s.ID]
		if e == nil || !e.src.equal(src) {
			e = nil
			if prev != nil {
				if p := prev.byID[s.ID]; p != nil && p.src.equal(src) {
					e = p
				}
			}
		}
		if e == nil {
			var err error
			if e, err = newEntry(s, src); err != nil {
				errs = append(errs, fmt.Errorf("ssl %s: %w", s.ID, err))
				continue
			}
		}
		x.byID[s.ID] = e
		for _, n := range names {
			x.add(NormalizeSNI(n), e)
		}
	}
	lens := make(map[int]bool)
	for k := range x.wild {
		lens[len(k)] = true
	}
	for l := range lens {
		x.wildLens = append(x.wildLens, l)
	}
	slices.Sort(x.wildLens)
	slices.Reverse(x.wildLens)
	x.config = &tls.Config{GetConfigForClient: x.getConfigForClient}
	return x, errors.Join(errs...)
}

// add files one name; the first claimant keeps it.
func (x *CertIndex) add(name string, e *Entry) {
	switch {
	case name == "*":
		if x.star == nil {
			x.star = e
		}
	case strings.HasPrefix(name, "*"):
		if _, ok := x.wild[name[1:]]; !ok {
			x.wild[name[1:]] = e
		}
	default:
		if _, ok := x.exact[name]; !ok {
			x.exact[name] = e
		}
	}
}

// Len is the number of distinct SSL objects in the index.
func (x *CertIndex) Len() int { return len(x.byID) }

// Lookup returns the entry serving sni, or nil. sni is normalised first
// (lowercase, trailing dot removed); an empty sni matches nothing, the
// fallback is applied by the handshake, not here.
func (x *CertIndex) Lookup(sni string) *Entry {
	sni = NormalizeSNI(sni)
	if sni == "" {
		return nil
	}
	if e := x.exact[sni]; e != nil {
		return e
	}
	// A pattern "*X" covers sni when sni ends in X and the part the star
	// stands for holds no dot: one label at most.
	dot := strings.IndexByte(sni, '.')
	if dot < 0 {
		dot = len(sni)
	}
	for _, l := range x.wildLens {
		if l > len(sni) {
			continue
		}
		if len(sni)-l > dot {
			break // shorter suffixes leave a dot in the star's part
		}
		if e := x.wild[sni[len(sni)-l:]]; e != nil {
			return e
		}
	}
	return x.star
}

// ServerConfig returns the listener configuration: its GetConfigForClient
// picks the entry for the ClientHello's SNI (or the fallback SNI) and fails
// the handshake when there is no SNI or no certificate for it. The config
// is shared: do not modify it. Unlike nginx, crypto/tls refuses a
// ClientHello whose SNI ends in a dot before this selection runs.
func (x *CertIndex) ServerConfig() *tls.Config { return x.config }

func (x *CertIndex) getConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	sni := NormalizeSNI(hello.ServerName)
	if sni == "" {
		sni = x.fallback
	}
	if sni == "" {
		return nil, errors.New("failed to find SNI: please check if the client requests via IP or uses an outdated protocol")
	}
	e := x.Lookup(sni)
	if e == nil {
		return nil, fmt.Errorf("failed to match any SSL certificate by SNI: %s", sni)
	}
	return e.config, nil
}
