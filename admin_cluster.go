package stream

import (
	"net/http"

	"github.com/caddy-apisix/stream/adminapi"
	"github.com/caddy-apisix/stream/etcdstore"
	"github.com/caddy-apisix/stream/live"
)

// clusterView is the answer of GET /v1/cluster: this node's deployment
// and, with etcd, its view of it.
type clusterView struct {
	// Role is the node's deployment role.
	Role string `json:"role"`
	// ConfigProvider is where its objects live.
	ConfigProvider string `json:"config_provider"`
	// Etcd is the node's etcd view (etcd provider only).
	Etcd *etcdstore.Status `json:"etcd,omitempty"`
}

// serveCluster answers GET /v1/cluster, keyless and read-only like
// /v1/healthcheck and limited to allow_admin clients: role, provider and,
// with etcd, connected, revision, last sync and object counts.
func (a *AdminAPI) serveCluster(w http.ResponseWriter, r *http.Request) error {
	if !controlRequest(w, r) {
		return nil
	}
	var view clusterView
	var es *etcdstore.Store
	live.WithActivation(func(st *live.Activation) {
		if cur := liveApp(st); cur != nil {
			view.Role, view.ConfigProvider = cur.deploy.role, cur.deploy.provider
		}
		es = st.Etcd
	})
	if es != nil {
		s := es.Status()
		view.Etcd = &s
	}
	adminapi.WriteJSON(w, http.StatusOK, view)
	return nil
}
