package natpunch

import "errors"

// Sentinel errors.
var (
	// ErrNoGateway means no default IPv4 gateway was found.
	ErrNoGateway = errors.New("natpunch: no default gateway")
	// ErrNoService means the gateway answered no port-mapping protocol.
	ErrNoService = errors.New("natpunch: no port-mapping service on the gateway")
	// ErrDoubleNAT means the router's external address is private or
	// shared (RFC 1918, RFC 6598), so a mapping on it is not reachable from
	// the internet.
	ErrDoubleNAT = errors.New("natpunch: double NAT or carrier-grade NAT")
	// ErrBackoff means the request was deferred by the write back-off.
	ErrBackoff = errors.New("natpunch: router writes backed off")
	// ErrClosed means the client was closed.
	ErrClosed = errors.New("natpunch: client closed")
	// ErrBadRequest means a mapping request is invalid.
	ErrBadRequest = errors.New("natpunch: invalid mapping request")
	// ErrRefused means the router refused the mapping (not authorized, port
	// range not allowed).
	ErrRefused = errors.New("natpunch: mapping refused by router")
	// ErrConflict means every external port tried is held by another host.
	ErrConflict = errors.New("natpunch: external port held by another host")
)
