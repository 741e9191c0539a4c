package link_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestUserLinkFromAnotherModule builds and tests testdata/userlink, a module
// of its own that implements link.Device with tapnet's public API only (a
// replace directive points it at this checkout) and carries gonet traffic
// over it. It fails if the seam ever needs something a user cannot name,
// such as an internal type.
func TestUserLinkFromAnotherModule(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not available:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "test", "-count=1", "./...")
	cmd.Dir = filepath.Join("testdata", "userlink")
	// The module's go.sum is checked in; -mod=mod lets the go command
	// resolve it against the replace without a vendor directory, and no
	// workspace of the caller's may interfere.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in %s: %v\n%s", cmd.Dir, err, out)
	}
	t.Logf("%s", out)
}
