package natpunch

import (
	"fmt"
	"strings"
)

// Proto is a transport protocol of a mapping.
type Proto string

// Transport protocols.
const (
	TCP Proto = "TCP"
	UDP Proto = "UDP"
)

// ianaNumber returns the IANA protocol number used by PCP.
func (p Proto) ianaNumber() uint8 {
	if p == UDP {
		return 17
	}
	return 6
}

func (p Proto) valid() bool { return p == TCP || p == UDP }

func (p Proto) lower() string { return strings.ToLower(string(p)) }

// ParseProto parses "tcp" or "udp" in any case.
func ParseProto(s string) (Proto, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	}
	return "", fmt.Errorf("parse proto %q: %w", s, ErrBadRequest)
}

// Method is the router protocol that holds a mapping.
type Method string

// Methods, in the default order of preference.
const (
	MethodNone   Method = ""
	MethodNATPMP Method = "natpmp"
	MethodPCP    Method = "pcp"
	MethodUPnP   Method = "upnp"
)
