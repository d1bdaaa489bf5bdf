package etcdstore

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/caddy-apisix/stream/model"
)

// initDirs are the directories apisix init creates placeholders for: the
// union of HTTP_ETCD_DIRECTORY and STREAM_ETCD_DIRECTORY
// (apisix/constants.lua, apisix/cli/etcd.lua prepare_dirs_via_http).
var initDirs = []string{
	"/upstreams", "/plugins", "/ssls", "/stream_routes", "/plugin_metadata", "/routes", "/services",
	"/consumers", "/global_rules", "/protos", "/plugin_configs", "/consumer_groups", "/secrets",
}

// initDirValue is the raw (not JSON) value of a directory placeholder.
const initDirValue = "init_dir"

// DefaultKinds are the directories a stream node reads.
var DefaultKinds = []model.Kind{model.StreamRoutes, model.Upstreams, model.SSLs, model.Services, model.PluginMetadata}

// layout maps keys to objects under one prefix.
type layout struct {
	prefix string
	kinds  map[string]model.Kind
}

func newLayout(prefix string, kinds []model.Kind) layout {
	l := layout{prefix: prefix, kinds: map[string]model.Kind{}}
	for _, k := range kinds {
		l.kinds[string(k)] = k
	}
	return l
}

// key is the etcd key of kind/id.
func (l layout) key(kind model.Kind, id string) string {
	return l.prefix + "/" + string(kind) + "/" + id
}

// parse returns the object a key names: <prefix>/<kind>/<id>, the id being
// the last segment. Directory placeholders (an empty id), nested keys
// (consumer credentials, graphql decorations), single keys such as
// <prefix>/plugins and <prefix>/gen_id, and kinds a stream node does not
// read give ok false.
func (l layout) parse(key string) (kind model.Kind, id string, ok bool) {
	rest, found := strings.CutPrefix(key, l.prefix+"/")
	if !found {
		return "", "", false
	}
	dir, id, found := strings.Cut(rest, "/")
	if !found || id == "" || strings.Contains(id, "/") || !utf8.ValidString(id) {
		return "", "", false
	}
	kind, ok = l.kinds[dir]
	return kind, id, ok
}

// errNotObject is APISIX's complaint about a value that is not an object
// (apisix/core/config_etcd.lua).
var errNotObject = errors.New("invalid item data, it should be an object")

// withID returns value, a JSON object, with "id" set to id: the key is
// authoritative and a string, as in APISIX's data plane (config_etcd.lua:
// item.value.id = key). A value whose id already matches keeps its bytes.
func withID(value []byte, id string) ([]byte, error) {
	if !utf8.ValidString(id) {
		return nil, errors.New("the key's id is not valid UTF-8")
	}
	obj, err := model.DecodeObject(value)
	if err != nil {
		return nil, errNotObject
	}
	if s, ok := obj["id"].(string); ok && s == id {
		return value, nil
	}
	obj["id"] = id
	return model.EncodeObject(obj)
}
