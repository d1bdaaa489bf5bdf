package adminapi

import (
	"fmt"
	"net/http"
)

// MaxConcurrentWrites bounds the Admin API writes (PUT, POST, PATCH,
// DELETE) in progress at once, across all endpoints. Writes are applied
// one at a time under the registry lock, each with an fsync; beyond the
// bound a client gets 503 at once instead of queueing without end behind
// a slow disk. APISIX has no such bound: nginx workers queue on etcd.
const MaxConcurrentWrites = 64

// writeSlots holds one token per write in progress; tests replace it.
var writeSlots = make(chan struct{}, MaxConcurrentWrites)

// acquireWrite takes a write slot, or answers the 503 to send when all
// are taken. release gives the slot back.
func acquireWrite() (release func(), busy *apiError) {
	slots := writeSlots
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
		return nil, errMsg(http.StatusServiceUnavailable, fmt.Sprintf(
			"too many concurrent Admin API writes (%d in progress), try again later", cap(slots)))
	}
}
