package standalone

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"

	"github.com/caddy-apisix/stream/internal/lua"
)

// The metadata keys of a stored configuration, also sent as headers
// (apisix/admin/standalone.lua: not Last-Modified, so client caches are
// not confused).
const (
	HeaderLastModified = "X-Last-Modified"
	HeaderDigest       = "X-Digest"
)

// blobName is the stored configuration's name in its Persister.
const blobName = "config.json"

// Persister keeps the last accepted configuration (store.Store does, in
// Caddy storage).
type Persister interface {
	ReadBlob(name string) (data []byte, ok bool, err error)
	WriteBlob(name string, data []byte) error
}

// Configs is the API-driven standalone mode: the configuration that
// PUT /apisix/admin/configs replaces whole, published to a registry and
// persisted so that a restart serves it again. It is safe for concurrent
// use.
type Configs struct {
	reg   *registry.Registry
	store Persister
	now   func() time.Time

	mu sync.Mutex
	// cur is the stored configuration with its conf versions and metadata
	// keys; nil before the first accepted PUT.
	cur Document
}

// NewConfigs returns the mode over reg; store may be nil (nothing is
// persisted).
func NewConfigs(reg *registry.Registry, store Persister) *Configs {
	return &Configs{reg: reg, store: store, now: time.Now}
}

// Restore loads the persisted configuration, if any, and publishes it.
func (c *Configs) Restore() error {
	if c.store == nil {
		return nil
	}
	data, ok, err := c.store.ReadBlob(blobName)
	if err != nil {
		return err
	}
	if !ok {
		// nothing accepted yet: no objects (an earlier mode's go)
		return Publish(c.reg, &Checked{})
	}
	doc, err := Parse(data, JSON, noEnv)
	if err != nil {
		return fmt.Errorf("stored standalone configuration: %w", err)
	}
	checked, errs := Check(withoutMetadata(doc))
	if len(errs) > 0 {
		return fmt.Errorf("stored standalone configuration: %s", errs[0].Message())
	}
	if err := Publish(c.reg, checked); err != nil {
		return fmt.Errorf("stored standalone configuration: %w", err)
	}
	c.mu.Lock()
	c.cur = doc
	c.mu.Unlock()
	return nil
}

func noEnv(string) (string, bool) { return "", false }

// Current returns the stored configuration as GET answers it: every
// conf_version 0 when nothing was accepted yet. The metadata values are ""
// when there are none.
func (c *Configs) Current() (doc Document, lastModified, digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		doc = Document{}
		for _, r := range resources {
			doc[confVersionKey(r.key)] = json.Number("0")
		}
		return doc, "", ""
	}
	return c.cur, metaString(c.cur[HeaderLastModified]), metaString(c.cur[HeaderDigest])
}

func metaString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return string(t)
	}
	return ""
}

// UpdateResult is the outcome of Update.
type UpdateResult struct {
	// Status is 202 (accepted), 204 (same digest), 400, or 500.
	Status int
	// ErrorMsg is the error_msg of a failure.
	ErrorMsg string
	// LastModified and Digest are the headers of a 202.
	LastModified, Digest string
}

// Update is PUT /apisix/admin/configs after the body was decoded
// (apisix/admin/standalone.lua update): same digest is 204; the body is
// validated; each collection's <key>_conf_version may not go back, a
// missing one is the stored one + 1, an equal one keeps the stored items;
// the result is validated whole, published and persisted, then 202.
func (c *Configs) Update(body Document, digest string) UpdateResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && metaString(c.cur[HeaderDigest]) == digest {
		return UpdateResult{Status: http.StatusNoContent}
	}
	if errs := Validate(body); len(errs) > 0 {
		return UpdateResult{Status: http.StatusBadRequest, ErrorMsg: firstError(errs)}
	}
	next := Document{}
	for _, r := range resources {
		vk := confVersionKey(r.key)
		stored, _ := number(c.cur[vk])
		items := body[r.key]
		newVer, has := body[vk]
		nv, _ := number(newVer)
		if has {
			if nv < stored {
				return UpdateResult{Status: http.StatusBadRequest,
					ErrorMsg: vk + " must be greater than or equal to (" + lua.FormatNumber(stored) + ")"}
			}
		} else {
			nv, newVer = stored+1, json.Number(lua.FormatNumber(stored+1))
		}
		next[vk] = newVer
		if nv == stored {
			if c.cur[r.key] != nil {
				next[r.key] = c.cur[r.key]
			}
		} else if list, _ := collection(body, r.key); len(list) > 0 {
			next[r.key] = items
		}
	}
	checked, errs := Check(next)
	if len(errs) > 0 {
		return UpdateResult{Status: http.StatusBadRequest, ErrorMsg: firstError(errs)}
	}
	lastModified := strconv.FormatInt(c.now().Unix(), 10)
	next[HeaderLastModified] = json.Number(lastModified)
	next[HeaderDigest] = digest

	raw, err := model.EncodeObject(next)
	if err != nil {
		return UpdateResult{Status: http.StatusInternalServerError, ErrorMsg: "failed to encode json: " + err.Error()}
	}
	if err := Publish(c.reg, checked); err != nil {
		return UpdateResult{Status: http.StatusBadRequest, ErrorMsg: err.Error()}
	}
	if c.store != nil {
		if err := c.store.WriteBlob(blobName, raw); err != nil {
			// not acknowledged, so not served either
			if prev, errs := Check(withoutMetadata(c.cur)); len(errs) == 0 {
				_ = Publish(c.reg, prev)
			}
			return UpdateResult{Status: http.StatusInternalServerError,
				ErrorMsg: "failed to save config: " + err.Error()}
		}
	}
	c.cur = next
	return UpdateResult{Status: http.StatusAccepted, LastModified: lastModified, Digest: digest}
}

// firstError is the error_msg of a refused PUT: the first problem,
// naming its object.
func firstError(errs []ItemError) string {
	if errs[0].short != "" {
		return errs[0].short
	}
	return errs[0].Message()
}

// withoutMetadata drops the metadata keys, as init_worker's update_config
// does before the configuration is used.
func withoutMetadata(doc Document) Document {
	out := Document{}
	for k, v := range doc {
		if k != HeaderLastModified && k != HeaderDigest {
			out[k] = v
		}
	}
	return out
}
