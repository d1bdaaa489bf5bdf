package syslog

import (
	"bytes"
	"encoding/json"
)

// encodeJSON encodes an entry as APISIX's core.json.encode (lua-cjson)
// would, in the two ways a reader of the raw line can see: "/" is escaped
// as "\/" and "<", ">", "&" are not escaped. Object keys are sorted.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
	// A "/" can only be inside a JSON string, where "\/" is its escape.
	return bytes.ReplaceAll(out, []byte{'/'}, []byte{'\\', '/'}), nil
}
