package adminapi

import (
	"net/http"
	"slices"

	"github.com/caddy-apisix/stream/standalone"
)

// routeHTTPOnly answers APISIX's HTTP-only collections (routes,
// consumers, ...), which APISIX tools read before anything else (ADC's
// ping and dump): GET lists them empty, a GET of one is etcd's 404, and a
// write is refused. ok is false for any other resource.
func routeHTTPOnly(r *http.Request, segs []string) (rep reply, ok bool, err error) {
	res := segs[0]
	if !slices.Contains(standalone.HTTPOnly(), res) {
		return reply{}, false, nil
	}
	if r.Method != http.MethodGet {
		return reply{}, true, errMsg(http.StatusBadRequest,
			"this gateway serves stream routes only: "+res+" are not supported")
	}
	if len(segs) > 1 && segs[1] != "" {
		return reply{}, true, keyNotFound()
	}
	return reply{status: http.StatusOK, body: listBody{List: []itemBody{}, Total: 0}}, true, nil
}
