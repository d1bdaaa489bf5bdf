package tlsx

import "github.com/caddy-apisix/stream/model"

// NewCertIndex is NewCertIndexFrom with nothing to reuse.
func NewCertIndex(ssls []*model.SSL, fallbackSNI string) (*CertIndex, error) {
	return NewCertIndexFrom(nil, ssls, fallbackSNI)
}
