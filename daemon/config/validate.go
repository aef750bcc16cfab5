package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Validate checks every value and returns the first problem, naming the key
// and the value: `config: s3.listen: invalid address "x": ...`.
func (c Config) Validate() error {
	checks := []func() error{
		func() error { return need("metadata_dir", c.MetadataDir) },
		func() error { return need("data_dir", c.DataDir) },
		func() error {
			if c.MetadataDir == c.DataDir {
				return bad("data_dir", c.DataDir, "must differ from metadata_dir")
			}
			return nil
		},
		func() error { return intRange("replication_factor", c.ReplicationFactor, 1, 7) },
		func() error {
			if c.BlockSize < 64<<10 || c.BlockSize > 64<<20 {
				return bad("block_size", c.BlockSize.String(), "must be between 64K and 64M")
			}
			return nil
		},
		func() error { return intRange("compression_level", c.CompressionLevel, 0, 19) },
		func() error {
			if err := intRange("inline_threshold", c.InlineThreshold, 0, 65536); err != nil {
				return err
			}
			if int64(c.InlineThreshold) >= int64(c.BlockSize) {
				return bad("inline_threshold", strconv.Itoa(c.InlineThreshold), "must be smaller than block_size")
			}
			return nil
		},
		func() error {
			if c.GCDelay < 0 {
				return bad("gc_delay", c.GCDelay.D().String(), "must not be negative")
			}
			return nil
		},
		func() error { return label("zone", c.Zone) },
		func() error {
			if c.Capacity < 0 {
				return bad("capacity", c.Capacity.String(), "must not be negative")
			}
			if c.Gateway && c.Capacity != 0 {
				return bad("capacity", c.Capacity.String(), "must be 0 (unset) on a gateway node")
			}
			return nil
		},
		func() error {
			seen := map[string]bool{}
			for i, t := range c.Tags {
				key := fmt.Sprintf("tags[%d]", i)
				if err := label(key, t); err != nil {
					return err
				}
				if seen[t] {
					return bad(key, t, "duplicate tag")
				}
				seen[t] = true
			}
			return nil
		},
		func() error {
			if c.Hostname != "" {
				return hostname("hostname", c.Hostname)
			}
			return nil
		},
		func() error {
			if c.Replaces == "" {
				return nil
			}
			if _, err := peer.Decode(c.Replaces); err != nil {
				return bad("replaces", c.Replaces, "not a node ID (see `entrepot node id` on the old node)")
			}
			return nil
		},
		func() error { return tcpAddr("s3.listen", c.S3.Listen, true) },
		func() error { return region("s3.region", c.S3.Region) },
		func() error { return domain("s3.root_domain", c.S3.RootDomain) },
		func() error { return tcpAddr("web.listen", c.Web.Listen, false) },
		func() error { return domain("web.root_domain", c.Web.RootDomain) },
		func() error { return socketPath("admin.socket", c.Admin.Socket) },
		func() error { return tcpAddr("admin.listen", c.Admin.Listen, false) },
		func() error {
			if c.Admin.Socket == "" && c.Admin.Listen == "" {
				return bad("admin.socket", "", "admin.socket and admin.listen cannot both be empty")
			}
			return nil
		},
		func() error { return filePath("admin.token_file", c.Admin.TokenFile) },
		func() error { return filePath("admin.metrics_token_file", c.Admin.MetricsTokenFile) },
		func() error { return multiaddr("rpc.listen", c.RPC.Listen, false, true) },
		func() error { return filePath("rpc.secret_file", c.RPC.SecretFile) },
		func() error {
			for i, a := range c.RPC.Bootstrap {
				if err := multiaddr(fmt.Sprintf("rpc.bootstrap[%d]", i), a, true, true); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for i, a := range c.RPC.PublicAddrs {
				if err := multiaddr(fmt.Sprintf("rpc.public_addrs[%d]", i), a, false, true); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			return durRange("rpc.gossip_interval", c.RPC.GossipInterval, 100*time.Millisecond, time.Hour)
		},
		func() error {
			return durRange("rpc.ping_interval", c.RPC.PingInterval, 100*time.Millisecond, time.Hour)
		},
		func() error {
			seen := map[string]bool{}
			for i, e := range c.NAT.Expose {
				key := fmt.Sprintf("nat.expose[%d]", i)
				if err := oneOf(key, e, "rpc", "s3", "web"); err != nil {
					return err
				}
				if seen[e] {
					return bad(key, e, "listed twice")
				}
				seen[e] = true
			}
			return nil
		},
		func() error { return oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error") },
		func() error { return oneOf("log.format", c.Log.Format, "text", "json") },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func bad(key, value, why string) error {
	return fmt.Errorf("config: %s: invalid value %q: %s: %w", key, value, why, ErrInvalid)
}

func durRange(key string, v Duration, lo, hi time.Duration) error {
	if v.D() < lo || v.D() > hi {
		return bad(key, v.D().String(), fmt.Sprintf("must be between %s and %s", lo, hi))
	}
	return nil
}

func need(key, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("config: %s: required: %w", key, ErrInvalid)
	}
	if strings.ContainsRune(v, 0) {
		return bad(key, v, "contains a NUL byte")
	}
	return nil
}

func intRange(key string, v, lo, hi int) error {
	if v < lo || v > hi {
		return bad(key, strconv.Itoa(v), fmt.Sprintf("must be between %d and %d", lo, hi))
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return bad(key, v, "must be one of "+strings.Join(allowed, ", "))
}

// label: 1..64 characters from [A-Za-z0-9._-].
func label(key, v string) error {
	if v == "" || len(v) > 64 {
		return bad(key, v, "must be 1 to 64 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return bad(key, v, "may only contain letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

func hostname(key, v string) error {
	if len(v) > 253 {
		return bad(key, v, "longer than 253 characters")
	}
	for _, part := range strings.Split(v, ".") {
		if part == "" || len(part) > 63 || part[0] == '-' || part[len(part)-1] == '-' {
			return bad(key, v, "not a valid host name")
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return bad(key, v, "not a valid host name")
			}
		}
	}
	return nil
}

func domain(key, v string) error {
	if v == "" {
		return nil
	}
	d := strings.TrimPrefix(v, ".")
	if strings.ToLower(d) != d {
		return bad(key, v, "must be lower case")
	}
	if err := hostname(key, d); err != nil {
		return bad(key, v, "not a valid domain name")
	}
	return nil
}

func region(key, v string) error {
	if v == "" || len(v) > 64 {
		return bad(key, v, "must be 1 to 64 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return bad(key, v, "may only contain lower-case letters, digits, '-' and '_'")
		}
	}
	return nil
}

// tcpAddr checks host:port; the host may be empty (all interfaces), an IP or a name.
func tcpAddr(key, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("config: %s: required: %w", key, ErrInvalid)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("config: %s: invalid address %q: %v: %w", key, v, err, ErrInvalid)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("config: %s: invalid address %q: port %q is not a number in 0..65535: %w", key, v, port, ErrInvalid)
	}
	if host != "" && net.ParseIP(host) == nil {
		if err := hostname(key, host); err != nil {
			return fmt.Errorf("config: %s: invalid address %q: host %q is neither an IP address nor a host name: %w", key, v, host, ErrInvalid)
		}
	}
	return nil
}

func socketPath(key, v string) error {
	if v == "" {
		return nil
	}
	if strings.ContainsRune(v, 0) {
		return bad(key, v, "contains a NUL byte")
	}
	// sun_path is 108 bytes on Linux, including the terminating NUL.
	if len(v) > 103 {
		return bad(key, v, "unix socket paths are limited to 103 bytes (the kernel allows 107; a temporary name needs 4 more)")
	}
	return nil
}

func filePath(key, v string) error {
	if v == "" {
		return nil
	}
	if strings.ContainsRune(v, 0) {
		return bad(key, v, "contains a NUL byte")
	}
	return nil
}

// multiaddr checks a libp2p multiaddr; withPeer requires a /p2p/<id> component,
// transport requires a /tcp/ component.
func multiaddr(key, v string, withPeer, transport bool) error {
	if v == "" {
		return fmt.Errorf("config: %s: required: %w", key, ErrInvalid)
	}
	m, err := ma.NewMultiaddr(v)
	if err != nil {
		return fmt.Errorf("config: %s: invalid multiaddr %q: %v: %w", key, v, err, ErrInvalid)
	}
	if transport {
		if _, err := m.ValueForProtocol(ma.P_TCP); err != nil {
			return bad(key, v, "must contain a /tcp/<port> component")
		}
	}
	if withPeer {
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return bad(key, v, "must end in /p2p/<peer id>")
		}
	}
	return nil
}
