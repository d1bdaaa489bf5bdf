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

// State is what the Admin API keeps between requests, shared by every
// Handler of the process (one is built per request): the write slots
// behind MaxConcurrentWrites and the cache of parsed route filters the
// warnings use. Package live creates and owns the process's one State.
type State struct {
	// writeSlots holds one token per write in progress.
	writeSlots chan struct{}
	filters    filterCache
}

// NewState returns an empty State with MaxConcurrentWrites write slots.
func NewState() *State {
	return &State{writeSlots: make(chan struct{}, MaxConcurrentWrites)}
}

// acquireWrite takes a write slot, or answers the 503 to send when all
// are taken. release gives the slot back.
func (s *State) acquireWrite() (release func(), busy *apiError) {
	slots := s.writeSlots
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
		return nil, errMsg(http.StatusServiceUnavailable, fmt.Sprintf(
			"too many concurrent Admin API writes (%d in progress), try again later", cap(slots)))
	}
}
