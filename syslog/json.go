package syslog

import (
	"bytes"

	"github.com/caddy-apisix/stream/model"
)

// encodeJSON encodes an entry as APISIX's core.json.encode (lua-cjson)
// would, in the two ways a reader of the raw line can see: "/" is escaped
// as "\/" and "<", ">", "&" are not escaped (model.EncodeObject). Object
// keys are sorted.
func encodeJSON(v any) ([]byte, error) {
	out, err := model.EncodeObject(v)
	if err != nil {
		return nil, err
	}
	// A "/" can only be inside a JSON string, where "\/" is its escape.
	return bytes.ReplaceAll(out, []byte{'/'}, []byte{'\\', '/'}), nil
}
