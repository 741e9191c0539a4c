module example.com/userlink

go 1.25.0

require github.com/tapnet/tapnet v0.0.0

require (
	golang.org/x/net v0.58.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/tapnet/tapnet => ../../..
