package ipfrag

import (
	"testing"

	"github.com/tapnet/tapnet/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines running.
func TestMain(m *testing.M) { leakcheck.Main(m) }
