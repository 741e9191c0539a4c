package stack_test

import (
	"testing"

	"github.com/tapnet/tapnet/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines running: every
// test closes what it opens, and closing a stack must release all of it.
func TestMain(m *testing.M) { leakcheck.Main(m) }
