package gonet

import (
	"testing"

	"github.com/tapnet/tapnet/internal/leakcheck"
)

// TestMain fails the package if, once every test has run and a settle time
// has passed, goroutines are still running: closing conns and stacks must
// release everything.
func TestMain(m *testing.M) { leakcheck.Main(m) }
