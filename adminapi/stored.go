package adminapi

import (
	"errors"

	"github.com/caddy-apisix/stream/model"
)

// CheckStored validates a value that another node wrote to a shared store
// (etcd), as APISIX's data plane re-checks every item with its schema
// (apisix/core/config_etcd.lua sync_data). References to other objects are
// not checked: the writer did that, and watch events arrive in any order.
// It returns the value with the schema defaults applied (they are applied
// when read, not stored).
func CheckStored(kind model.Kind, value []byte) ([]byte, error) {
	obj, err := model.DecodeObject(value)
	if err != nil {
		return nil, errors.New("invalid item data, it should be an object")
	}
	refs := model.RefsExist()
	// APISIX's watcher skips the plugins its node does not have
	refs.SkipUnknownPlugins = true
	if aerr := validateWith(refs, kind, obj); aerr != nil {
		return nil, aerr
	}
	return model.EncodeObject(obj)
}
