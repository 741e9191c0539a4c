package mcast

import "testing"

// TestFilterModesAreRecordTypes: the core writes a filter's mode as the
// current-state record type, so the public modes must keep those values.
func TestFilterModesAreRecordTypes(t *testing.T) {
	if Include != ModeIsInclude || Exclude != ModeIsExclude {
		t.Fatalf("Include, Exclude = %d, %d; want the record types %d, %d",
			Include, Exclude, ModeIsInclude, ModeIsExclude)
	}
}
