package usere2e

import (
	"fmt"
	"testing"
)

// TestStartupLogListsAddresses reads the one INFO line that says the
// stream proxy started: it names every listener address.
func TestStartupLogListsAddresses(t *testing.T) {
	n := startNode(t, nil)
	n.waitLog(`"level":"info"`, `"msg":"apisix stream proxy started"`, `"tcp":1`, `"udp":1`,
		fmt.Sprintf(`"listen":["tcp/127.0.0.1:%d","udp/127.0.0.1:%d"]`, n.stream, n.udp))
}
