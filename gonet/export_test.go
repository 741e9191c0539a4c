package gonet

// The system's view of errors, for tests of the external package that
// compare messages with what net prints on this OS.
var (
	OSErrno = osErrno
	OSCall  = osCall
)
