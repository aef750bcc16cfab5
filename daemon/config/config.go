package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrInvalid is wrapped by every validation and decoding error.
var ErrInvalid = errors.New("invalid configuration")

// DefaultPath is where `entrepot server` looks for its configuration.
const DefaultPath = "/etc/entrepot/entrepot.toml"

// Config is a node's configuration. Zero values are not meaningful: start from
// [Default] or [Dev], or use [Load] / [Parse], which start from [Default].
type Config struct {
	// MetadataDir holds the metadata database. Default /var/lib/entrepot/meta. Required.
	MetadataDir string `toml:"metadata_dir"`
	// DataDir holds the data blocks. Default /var/lib/entrepot/data. Required.
	DataDir string `toml:"data_dir"`
	// ReplicationFactor is the number of copies of every item; 1..7. Default 3 (dev: 1).
	ReplicationFactor int `toml:"replication_factor"`
	// BlockSize is the size objects are cut into; 64K..64M. Default 1M.
	BlockSize Size `toml:"block_size"`
	// CompressionLevel is the zstd level, 0 (none) .. 19. Default 1.
	CompressionLevel int `toml:"compression_level"`
	// InlineThreshold: objects up to this many bytes live in metadata; 0..65536 and < BlockSize. Default 4096.
	InlineThreshold int `toml:"inline_threshold"`
	// GCDelay is how long an unreferenced block is kept before deletion. Default 10m.
	GCDelay Duration `toml:"gc_delay"`
	// Fsync makes every acknowledged write durable (data and metadata synced). Default true.
	Fsync bool `toml:"fsync"`
	// Zone is this node's failure domain. Default "default".
	Zone string `toml:"zone"`
	// Capacity is the storage this node offers to the cluster; 0 = not declared. Must be 0 for a gateway.
	Capacity Size `toml:"capacity"`
	// Gateway nodes store nothing and only serve the APIs. Default false.
	Gateway bool `toml:"gateway"`
	// Tags are free-form labels shown in status. Default none.
	Tags []string `toml:"tags"`
	// Hostname shown in status; "" = the operating system's host name.
	Hostname string `toml:"hostname"`
	// Decommission removes this node from the cluster layout: its data moves to
	// the other nodes. Default false.
	Decommission bool `toml:"decommission"`
	// Replaces is the node ID (libp2p peer ID) of a node this one replaces, for a
	// node re-installed with a new identity: the old ID leaves the layout. Optional.
	Replaces string `toml:"replaces"`

	S3    S3    `toml:"s3"`
	Web   Web   `toml:"web"`
	Admin Admin `toml:"admin"`
	RPC   RPC   `toml:"rpc"`
	NAT   NAT   `toml:"nat"`
	Log   Log   `toml:"log"`

	// DevDir is set by [Dev] only: the development directory holding
	// dev-credentials.json. Empty for a normal node. Never read from TOML.
	DevDir string `toml:"-"`
}

// S3 is the [s3] section.
type S3 struct {
	// Listen is the S3 API's TCP address. Default "[::]:3900".
	Listen string `toml:"listen"`
	// Region is the region clients must sign for. Default "us-east-1".
	Region string `toml:"region"`
	// RootDomain enables virtual-host style requests (<bucket>.<root_domain>); "" = path style only.
	RootDomain string `toml:"root_domain"`
}

// Web is the [web] section (static website serving, daemon/web).
type Web struct {
	// Enabled starts the website listener. Default false, so that several
	// nodes or tests on one host do not contend for the default port.
	Enabled bool `toml:"enabled"`
	// Listen is the website server's TCP address. Default "[::]:3902".
	Listen string `toml:"listen"`
	// RootDomain: websites are served for Host <bucket>.<root_domain>. Optional.
	RootDomain string `toml:"root_domain"`
}

// Admin is the [admin] section.
type Admin struct {
	// Socket is the admin API's unix socket (mode 0600); "" disables it. Default "/run/entrepot/admin.sock".
	Socket string `toml:"socket"`
	// Listen is the admin API's TCP address; "" disables it. Default "127.0.0.1:3903".
	// Over TCP every endpoint but /health needs the admin token.
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token for the TCP admin API. Optional; must not be group/world-readable.
	TokenFile string `toml:"token_file"`
	// MetricsTokenFile holds the bearer token for /metrics. Optional; same permission rule.
	MetricsTokenFile string `toml:"metrics_token_file"`

	// Token and MetricsToken are filled by ReadSecrets. Never encoded.
	Token        string `toml:"-" json:"-"`
	MetricsToken string `toml:"-" json:"-"`
}

// RPC is the [rpc] section: the inter-node transport. A node runs in cluster
// mode when SecretFile is set.
type RPC struct {
	// Listen is the libp2p listen multiaddr. Default "/ip4/0.0.0.0/tcp/3901".
	Listen string `toml:"listen"`
	// SecretFile holds the cluster secret: 64 hex characters (32 bytes). Setting it
	// turns cluster mode on; without it the node runs alone.
	SecretFile string `toml:"secret_file"`
	// Bootstrap lists peers' multiaddrs, each ending in /p2p/<peer id>.
	Bootstrap []string `toml:"bootstrap"`
	// PublicAddrs are multiaddrs to advertise in addition to the discovered ones.
	PublicAddrs []string `toml:"public_addrs"`
	// GossipInterval is the period of cluster-state gossip; 100ms..1h. Default 10s.
	GossipInterval Duration `toml:"gossip_interval"`
	// PingInterval is the liveness period (a peer is down after 4 missed pings); 100ms..1h. Default 15s.
	PingInterval Duration `toml:"ping_interval"`
	// MDNS enables discovery of members on the local network. Default true.
	MDNS bool `toml:"mdns"`

	// Secret is filled by ReadSecrets (32 bytes). Never encoded.
	Secret []byte `toml:"-" json:"-"`
}

// NAT is the [nat] section (port mapping on the home router; used by a later release).
type NAT struct {
	// UPnP enables mapping ports on the router with UPnP IGD / NAT-PMP / PCP. Default false.
	UPnP bool `toml:"upnp"`
	// Expose lists the listeners to map: "rpc", "s3", "web". Default ["rpc"].
	Expose []string `toml:"expose"`
}

// Log is the [log] section.
type Log struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `toml:"level"`
	// Format is text or json. Default "text".
	Format string `toml:"format"`
}

// Duration is a time.Duration that reads and writes Go duration strings ("10m").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", string(b), err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the production defaults.
func Default() Config {
	return Config{
		MetadataDir:       "/var/lib/entrepot/meta",
		DataDir:           "/var/lib/entrepot/data",
		ReplicationFactor: 3,
		BlockSize:         1 << 20,
		CompressionLevel:  1,
		InlineThreshold:   4096,
		GCDelay:           Duration(10 * time.Minute),
		Fsync:             true,
		Zone:              "default",
		S3:                S3{Listen: "[::]:3900", Region: "us-east-1"},
		Web:               Web{Listen: "[::]:3902"},
		Admin:             Admin{Socket: "/run/entrepot/admin.sock", Listen: "127.0.0.1:3903"},
		RPC:               RPC{Listen: "/ip4/0.0.0.0/tcp/3901", GossipInterval: Duration(10 * time.Second), PingInterval: Duration(15 * time.Second), MDNS: true},
		NAT:               NAT{Expose: []string{"rpc"}},
		Log:               Log{Level: "info", Format: "text"},
	}
}

//go:embed dev.toml
var devTOML []byte

// DefaultDevDir is the development directory used when --data-dir is not given.
const DefaultDevDir = "entrepot-dev"

// Dev returns the embedded single-node development configuration rooted at dir
// ("" = ./entrepot-dev): metadata in <dir>/meta, blocks in <dir>/data, admin
// socket <dir>/admin.sock, S3 on 127.0.0.1:3900, admin TCP on 127.0.0.1:3903,
// replication factor 1.
func Dev(dir string) (Config, error) {
	if dir == "" {
		dir = DefaultDevDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Config{}, fmt.Errorf("resolve dev directory %q: %w", dir, err)
	}
	cfg, err := Parse(devTOML)
	if err != nil {
		return Config{}, fmt.Errorf("embedded dev defaults: %w", err)
	}
	cfg.MetadataDir = filepath.Join(abs, "meta")
	cfg.DataDir = filepath.Join(abs, "data")
	cfg.Admin.Socket = filepath.Join(abs, "admin.sock")
	cfg.DevDir = abs
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Parse decodes TOML over [Default] and validates the result. It does not
// touch the file system (secrets are read by ReadSecrets).
func Parse(data []byte) (Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, decodeError(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Config{}, fmt.Errorf("config: %s: unknown key: %w", und[0].String(), ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" {
			return fmt.Errorf("config: %s: %s (line %d): %w", pe.LastKey, pe.Message, pe.Position.Line, ErrInvalid)
		}
		return fmt.Errorf("config: line %d: %s: %w", pe.Position.Line, pe.Message, ErrInvalid)
	}
	return fmt.Errorf("config: %v: %w", err, ErrInvalid)
}

// Load reads, decodes and validates the file at path, resolves relative
// directories against the file's directory, and reads the secret files.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: read %s: %w", path, err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg.resolvePaths(filepath.Dir(path))
	if err := cfg.ReadSecrets(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) resolvePaths(base string) {
	for _, p := range []*string{&c.MetadataDir, &c.DataDir, &c.Admin.Socket, &c.Admin.TokenFile, &c.Admin.MetricsTokenFile, &c.RPC.SecretFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

// Encode renders the normalised configuration as TOML. Secrets are never included.
func (c Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
