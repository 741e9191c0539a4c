module github.com/tapnet/tapnet

go 1.26.8

require (
	github.com/quic-go/quic-go v0.65.0
	github.com/songgao/water v0.0.0-20200317203138-2b4b6d7c09d8
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require golang.org/x/crypto v0.58.0 // indirect
