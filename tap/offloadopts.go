package tap

import (
	"fmt"
	"strings"
)

// maxQueues bounds Options.Queues (Linux allows 256 queues per device).
const maxQueues = 64

// checkQueues refuses a queue count Open cannot honour on any system, so
// that a bad Options.Queues fails alike everywhere.
func checkQueues(n int) error {
	if n < 0 || n > maxQueues {
		return fmt.Errorf("tap: %d queues out of range 1..%d", n, maxQueues)
	}
	return nil
}

// withoutVnet is the offload status of a device whose driver has neither
// virtio-net headers nor multiple queues (every system's but Linux's): it
// runs with none and one, and says so when more was asked for.
func withoutVnet(offload bool, queues int) OffloadStatus {
	var why []string
	if offload {
		why = append(why, "offloads need Linux's IFF_VNET_HDR")
	}
	if queues > 1 {
		why = append(why, fmt.Sprintf("one queue, not %d: several need Linux's IFF_MULTI_QUEUE", queues))
	}
	return OffloadStatus{Fallback: strings.Join(why, "; ")}
}
