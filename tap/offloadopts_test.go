package tap

import (
	"strings"
	"testing"
)

func TestCheckQueues(t *testing.T) {
	for n, ok := range map[int]bool{-1: false, 0: true, 1: true, 2: true, maxQueues: true, maxQueues + 1: false} {
		if err := checkQueues(n); (err == nil) != ok {
			t.Errorf("checkQueues(%d) = %v", n, err)
		}
	}
}

// TestWithoutVnet: a driver without virtio-net headers or multiple queues
// grants nothing, and says why exactly when something was asked for.
func TestWithoutVnet(t *testing.T) {
	for _, tc := range []struct {
		offload bool
		queues  int
		want    []string // in Fallback; none: Fallback empty
	}{
		{false, 0, nil},
		{false, 1, nil},
		{true, 0, []string{"IFF_VNET_HDR"}},
		{false, 4, []string{"one queue, not 4", "IFF_MULTI_QUEUE"}},
		{true, 2, []string{"IFF_VNET_HDR", "one queue, not 2"}},
	} {
		st := withoutVnet(tc.offload, tc.queues)
		if st.VnetHdr || st.Checksum || st.USO || (len(tc.want) == 0) != (st.Fallback == "") {
			t.Errorf("offload %v, %d queues: %+v", tc.offload, tc.queues, st)
		}
		for _, w := range tc.want {
			if !strings.Contains(st.Fallback, w) {
				t.Errorf("offload %v, %d queues: Fallback %q lacks %q", tc.offload, tc.queues, st.Fallback, w)
			}
		}
	}
}
