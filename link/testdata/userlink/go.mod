module example.com/userlink

go 1.26.8

require github.com/tapnet/tapnet v0.0.0

require (
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/tapnet/tapnet => ../../..
