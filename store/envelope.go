package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/caddy-apisix/stream/model"
	"github.com/caddy-apisix/stream/registry"
)

// envelope is the stored form of one registry.Object: one JSON document
// per key, readable as it is on disk.
type envelope struct {
	// Kind is the object's resource kind, e.g. "stream_routes".
	Kind string `json:"kind"`
	// ID is the object's id, unescaped.
	ID string `json:"id"`
	// CreatedIndex is the store revision of the object's first write.
	CreatedIndex *int64 `json:"createdIndex"`
	// ModifiedIndex is the store revision of the object's latest write.
	ModifiedIndex *int64 `json:"modifiedIndex"`
	// Value is the object's JSON, kept verbatim rather than base64.
	Value json.RawMessage `json:"value"`
}

// checkObject rejects objects that cannot be stored and read back as they
// are. Store and Memory apply the same rules.
func checkObject(o *registry.Object) error {
	if o == nil {
		return errors.New("nil object")
	}
	if o.Static {
		return fmt.Errorf("%s %q is static (from the Caddy config) and is not stored", o.Kind.Noun(), o.ID)
	}
	if err := checkKind(o.Kind); err != nil {
		return err
	}
	if o.ID == "" {
		return fmt.Errorf("%s with an empty id", o.Kind.Noun())
	}
	if !utf8.ValidString(o.ID) {
		return fmt.Errorf("%s id %q is not valid UTF-8", o.Kind.Noun(), o.ID)
	}
	if o.CreatedIndex < 0 || o.ModifiedIndex < o.CreatedIndex {
		return fmt.Errorf("%s %q: bad revisions created=%d modified=%d", o.Kind.Noun(), o.ID, o.CreatedIndex, o.ModifiedIndex)
	}
	v := bytes.TrimSpace(o.Value)
	if len(v) == 0 || string(v) == "null" {
		return fmt.Errorf("%s %q: empty value", o.Kind.Noun(), o.ID)
	}
	if !json.Valid(v) {
		return fmt.Errorf("%s %q: value is not valid JSON", o.Kind.Noun(), o.ID)
	}
	return nil
}

// encodeEnvelope renders o. The value is copied verbatim (without
// surrounding white space), not re-encoded, so Load returns the very
// bytes that were stored.
func encodeEnvelope(o *registry.Object) ([]byte, error) {
	if err := checkObject(o); err != nil {
		return nil, err
	}
	kind, err := json.Marshal(string(o.Kind))
	if err != nil {
		return nil, err
	}
	id, err := json.Marshal(o.ID)
	if err != nil {
		return nil, err
	}
	v := bytes.TrimSpace(o.Value)
	b := make([]byte, 0, len(v)+len(id)+96)
	b = append(b, `{"kind":`...)
	b = append(b, kind...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	b = append(b, `,"createdIndex":`...)
	b = strconv.AppendInt(b, o.CreatedIndex, 10)
	b = append(b, `,"modifiedIndex":`...)
	b = strconv.AppendInt(b, o.ModifiedIndex, 10)
	b = append(b, `,"value":`...)
	b = append(b, v...)
	b = append(b, "}\n"...)
	return b, nil
}

// decodeEnvelope parses a stored object. It accepts unknown fields (written
// by a newer version) but nothing incomplete: every field must be present
// and pass checkObject.
func decodeEnvelope(data []byte) (*registry.Object, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	if e.Kind == "" || e.ID == "" || e.Value == nil || e.CreatedIndex == nil || e.ModifiedIndex == nil {
		return nil, errors.New("decoding object: kind, id, createdIndex, modifiedIndex or value missing")
	}
	o := &registry.Object{
		Kind:          model.Kind(e.Kind),
		ID:            e.ID,
		Value:         []byte(e.Value),
		CreatedIndex:  *e.CreatedIndex,
		ModifiedIndex: *e.ModifiedIndex,
	}
	if err := checkObject(o); err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	return o, nil
}

// encodeCounter renders the POST id counter as decimal text.
func encodeCounter(n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("negative counter %d", n)
	}
	return strconv.AppendInt(nil, n, 10), nil
}

// decodeCounter parses what encodeCounter wrote.
func decodeCounter(data []byte) (int64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad counter %q", data)
	}
	return n, nil
}
