package model

import (
	"bytes"
	"encoding/json"
	"errors"
)

// DecodeObject decodes a JSON object with numbers kept exact, the form the
// Check functions take.
func DecodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}
