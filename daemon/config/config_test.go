package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleParses(t *testing.T) {
	data, err := os.ReadFile("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("example.toml: %v", err)
	}
	if cfg.Zone != "home-a" || cfg.Capacity != 2<<40 || cfg.BlockSize != 1<<20 || cfg.GCDelay.D() != 10*time.Minute {
		t.Errorf("unexpected values: %+v", cfg)
	}
	if cfg.S3.RootDomain != "s3.example.org" || len(cfg.RPC.Bootstrap) != 1 || len(cfg.Tags) != 2 {
		t.Errorf("unexpected values: %+v", cfg)
	}
	// Every documented default matches Default() for the keys the example does not change.
	d := Default()
	if cfg.ReplicationFactor != d.ReplicationFactor || cfg.S3.Listen != d.S3.Listen || cfg.Admin.Socket != d.Admin.Socket ||
		cfg.Admin.Listen != d.Admin.Listen || cfg.RPC.Listen != d.RPC.Listen || cfg.InlineThreshold != d.InlineThreshold ||
		cfg.Fsync != d.Fsync || cfg.Log != d.Log || cfg.CompressionLevel != d.CompressionLevel ||
		cfg.NAT.UPnP != d.NAT.UPnP || cfg.RPC.GossipInterval != d.RPC.GossipInterval || cfg.RPC.PingInterval != d.RPC.PingInterval ||
		cfg.RPC.MDNS != d.RPC.MDNS || cfg.Decommission != d.Decommission || cfg.Replaces != d.Replaces || strings.Join(cfg.NAT.Expose, ",") != strings.Join(d.NAT.Expose, ",") {
		t.Errorf("example.toml and Default() disagree:\n%+v\n%+v", cfg, d)
	}
}

func TestEmptyIsDefault(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	def, _ := Default().Encode()
	if string(out) != string(def) {
		t.Errorf("empty config differs from defaults:\n%s\n---\n%s", out, def)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	data, _ := os.ReadFile("example.toml")
	cfg, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("re-parse normalised config: %v\n%s", err, out)
	}
	out2, _ := again.Encode()
	if string(out) != string(out2) {
		t.Errorf("not stable:\n%s\n---\n%s", out, out2)
	}
	if !strings.Contains(string(out), `block_size = "1M"`) || !strings.Contains(string(out), `capacity = "2T"`) {
		t.Errorf("sizes not normalised:\n%s", out)
	}
}

func TestParseErrorsNameKey(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string // substrings of the error
	}{
		{"unknown top-level key", `replication_factr = 2`, []string{"replication_factr", "unknown key"}},
		{"unknown section key", "[s3]\nlistn = \"x\"", []string{"s3.listn", "unknown key"}},
		{"unknown section", "[s4]\nlisten = \"x\"", []string{"s4", "unknown key"}},
		{"bad s3 listen", "[s3]\nlisten = \"x\"", []string{"s3.listen", `"x"`, "invalid address"}},
		{"bad s3 port", "[s3]\nlisten = \"127.0.0.1:99999\"", []string{"s3.listen", "99999"}},
		{"bad admin listen", "[admin]\nlisten = \"localhost\"", []string{"admin.listen", `"localhost"`}},
		{"bad web listen", "[web]\nlisten = \":http:x\"", []string{"web.listen"}},
		{"rf zero", `replication_factor = 0`, []string{"replication_factor", `"0"`}},
		{"rf too big", `replication_factor = 8`, []string{"replication_factor", `"8"`}},
		{"rf wrong type", `replication_factor = "three"`, []string{"replication_factor"}},
		{"bad block size", `block_size = "1Q"`, []string{"block_size", `"1Q"`}},
		{"block size too small", `block_size = "1K"`, []string{"block_size", `"1K"`}},
		{"negative compression", `compression_level = -1`, []string{"compression_level", `"-1"`}},
		{"compression too high", `compression_level = 23`, []string{"compression_level", `"23"`}},
		{"inline too big", `inline_threshold = 100000`, []string{"inline_threshold", `"100000"`}},
		{"bad gc delay", `gc_delay = "soon"`, []string{"gc_delay", `"soon"`}},
		{"negative gc delay", `gc_delay = "-1m"`, []string{"gc_delay", `"-1m0s"`}},
		{"empty zone", `zone = ""`, []string{"zone", `""`}},
		{"bad zone", `zone = "a b"`, []string{"zone", `"a b"`}},
		{"bad capacity", `capacity = "lots"`, []string{"capacity", `"lots"`}},
		{"gateway with capacity", "gateway = true\ncapacity = \"1T\"", []string{"capacity", `"1T"`, "gateway"}},
		{"bad tag", `tags = ["ok", "not ok"]`, []string{"tags[1]", `"not ok"`}},
		{"duplicate tag", `tags = ["a", "a"]`, []string{"tags[1]", "duplicate"}},
		{"bad hostname", `hostname = "-x"`, []string{"hostname", `"-x"`}},
		{"empty metadata dir", `metadata_dir = ""`, []string{"metadata_dir", "required"}},
		{"same dirs", "metadata_dir = \"/a\"\ndata_dir = \"/a\"", []string{"data_dir", `"/a"`}},
		{"bad region", "[s3]\nregion = \"US East\"", []string{"s3.region", `"US East"`}},
		{"empty s3 listen", "[s3]\nlisten = \"\"", []string{"s3.listen", "required"}},
		{"bad root domain", "[s3]\nroot_domain = \"a..b\"", []string{"s3.root_domain", `"a..b"`}},
		{"upper root domain", "[web]\nroot_domain = \"Web.Example\"", []string{"web.root_domain", `"Web.Example"`}},
		{"no admin at all", "[admin]\nsocket = \"\"\nlisten = \"\"", []string{"admin.socket"}},
		{"long socket", "[admin]\nsocket = \"/" + strings.Repeat("s", 103) + "\"", []string{"admin.socket"}},
		{"bad rpc listen", "[rpc]\nlisten = \"0.0.0.0:3901\"", []string{"rpc.listen", `"0.0.0.0:3901"`, "multiaddr"}},
		{"rpc listen udp", "[rpc]\nlisten = \"/ip4/0.0.0.0/udp/3901\"", []string{"rpc.listen", "/tcp/"}},
		{"bootstrap without peer", "[rpc]\nbootstrap = [\"/ip4/1.2.3.4/tcp/3901\"]", []string{"rpc.bootstrap[0]", "/p2p/"}},
		{"bad public addr", "[rpc]\npublic_addrs = [\"nope\"]", []string{"rpc.public_addrs[0]", `"nope"`}},
		{"bad nat expose", "[nat]\nexpose = [\"ssh\"]", []string{"nat.expose[0]", `"ssh"`}},
		{"duplicate nat expose", "[nat]\nexpose = [\"rpc\", \"rpc\"]", []string{"nat.expose[1]", `"rpc"`}},
		{"unknown nat key", "[nat]\npmp = true", []string{"nat.pmp", "unknown key"}},
		{"bad log level", "[log]\nlevel = \"loud\"", []string{"log.level", `"loud"`}},
		{"bad log format", "[log]\nformat = \"xml\"", []string{"log.format", `"xml"`}},
		{"toml syntax", "metadata_dir = ", []string{"config:", "line 1"}},
		{"secret inline refused", "[admin]\ntoken = \"abc\"", []string{"admin.token", "unknown key"}},
		{"replaces not a node id", `replaces = "node-1"`, []string{"replaces", `"node-1"`, "node ID"}},
		{"decommission not a bool", `decommission = "yes"`, []string{"decommission"}},
		{"gossip interval too short", "[rpc]\ngossip_interval = \"1ms\"", []string{"rpc.gossip_interval", `"1ms"`}},
		{"gossip interval not a duration", "[rpc]\ngossip_interval = \"often\"", []string{"rpc.gossip_interval"}},
		{"ping interval zero", "[rpc]\nping_interval = \"0s\"", []string{"rpc.ping_interval", `"0s"`}},
		{"ping interval too long", "[rpc]\nping_interval = \"2h\"", []string{"rpc.ping_interval", `"2h0m0s"`}},
		{"mdns not a bool", "[rpc]\nmdns = 1", []string{"rpc.mdns"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml))
			if err == nil {
				t.Fatalf("no error for %q", tc.toml)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q does not start with config:", err)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	cases := []struct {
		name, toml string
		check      func(Config) bool
	}{
		{"integer block size", `block_size = 2097152`, func(c Config) bool { return c.BlockSize == 2<<20 }},
		{"ipv6 listen", "[s3]\nlisten = \"[::1]:9000\"", func(c Config) bool { return c.S3.Listen == "[::1]:9000" }},
		{"host name listen", "[s3]\nlisten = \"localhost:9000\"", func(c Config) bool { return true }},
		{"port 0", "[s3]\nlisten = \"127.0.0.1:0\"", func(c Config) bool { return true }},
		{"no compression", `compression_level = 0`, func(c Config) bool { return c.CompressionLevel == 0 }},
		{"fsync off", `fsync = false`, func(c Config) bool { return !c.Fsync }},
		{"gateway", `gateway = true`, func(c Config) bool { return c.Gateway }},
		{"admin tcp off", "[admin]\nlisten = \"\"", func(c Config) bool { return c.Admin.Listen == "" }},
		{"admin socket off", "[admin]\nsocket = \"\"", func(c Config) bool { return c.Admin.Socket == "" }},
		{"root domain leading dot", "[s3]\nroot_domain = \".s3.local\"", func(c Config) bool { return c.S3.RootDomain == ".s3.local" }},
		{"dns bootstrap", "[rpc]\nbootstrap = [\"/dns4/example.org/tcp/3901/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA\"]",
			func(c Config) bool { return len(c.RPC.Bootstrap) == 1 }},
		{"nat as rendered by the NixOS module", "[nat]\nupnp = true\nexpose = [\"rpc\", \"s3\"]",
			func(c Config) bool { return c.NAT.UPnP && len(c.NAT.Expose) == 2 }},
		{"cluster keys", "decommission = true\nreplaces = \"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA\"\n[rpc]\ngossip_interval = \"200ms\"\nping_interval = \"300ms\"\nmdns = false",
			func(c Config) bool {
				return c.Decommission && c.Replaces != "" && c.RPC.GossipInterval.D() == 200*time.Millisecond &&
					c.RPC.PingInterval.D() == 300*time.Millisecond && !c.RPC.MDNS
			}},
		{"cluster defaults", "", func(c Config) bool {
			return !c.Decommission && c.Replaces == "" && c.RPC.GossipInterval.D() == 10*time.Second &&
				c.RPC.PingInterval.D() == 15*time.Second && c.RPC.MDNS
		}},
		{"json logs", "[log]\nformat = \"json\"\nlevel = \"debug\"", func(c Config) bool { return c.Log.Format == "json" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.toml))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestDev(t *testing.T) {
	dir := t.TempDir()
	c, err := Dev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicationFactor != 1 || c.S3.Listen != "127.0.0.1:3900" || c.Admin.Listen != "127.0.0.1:3903" ||
		c.Admin.Socket != filepath.Join(dir, "admin.sock") || c.DevDir != dir ||
		c.MetadataDir != filepath.Join(dir, "meta") || c.DataDir != filepath.Join(dir, "data") {
		t.Errorf("dev config: %+v", c)
	}
	rel, err := Dev("")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(rel.DevDir) || filepath.Base(rel.DevDir) != DefaultDevDir {
		t.Errorf("default dev dir = %q", rel.DevDir)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func TestLoadSecrets(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name    string
		files   map[string]os.FileMode // file name -> mode; content below
		content map[string]string
		toml    string
		wantErr []string
		is      error
	}{
		{name: "all good", files: map[string]os.FileMode{"tok": 0o600, "mtok": 0o400, "rpc": 0o600},
			content: map[string]string{"tok": "admintoken\n", "mtok": "m", "rpc": secret + "\n"},
			toml:    "[admin]\ntoken_file = \"tok\"\nmetrics_token_file = \"mtok\"\n[rpc]\nsecret_file = \"rpc\""},
		{name: "world readable token", files: map[string]os.FileMode{"tok": 0o604}, content: map[string]string{"tok": "x"},
			toml: "[admin]\ntoken_file = \"tok\"", wantErr: []string{"admin.token_file", "tok", "0604"}, is: ErrInsecureSecret},
		{name: "group readable metrics token", files: map[string]os.FileMode{"m": 0o640}, content: map[string]string{"m": "x"},
			toml: "[admin]\nmetrics_token_file = \"m\"", wantErr: []string{"admin.metrics_token_file", "m"}, is: ErrInsecureSecret},
		{name: "world readable rpc secret", files: map[string]os.FileMode{"rpc": 0o644}, content: map[string]string{"rpc": secret},
			toml: "[rpc]\nsecret_file = \"rpc\"", wantErr: []string{"rpc.secret_file", "rpc"}, is: ErrInsecureSecret},
		{name: "missing token file", toml: "[admin]\ntoken_file = \"nope\"", wantErr: []string{"admin.token_file", "nope"}, is: os.ErrNotExist},
		{name: "empty token", files: map[string]os.FileMode{"tok": 0o600}, content: map[string]string{"tok": " \n"},
			toml: "[admin]\ntoken_file = \"tok\"", wantErr: []string{"admin.token_file", "empty"}, is: ErrInvalid},
		{name: "short rpc secret", files: map[string]os.FileMode{"rpc": 0o600}, content: map[string]string{"rpc": "abcd"},
			toml: "[rpc]\nsecret_file = \"rpc\"", wantErr: []string{"rpc.secret_file", "64 hex"}, is: ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, mode := range tc.files {
				writeFile(t, filepath.Join(dir, name), tc.content[name], mode)
			}
			path := filepath.Join(dir, "entrepot.toml")
			writeFile(t, path, tc.toml, 0o644)
			cfg, err := Load(path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Admin.Token != "admintoken" || cfg.Admin.MetricsToken != "m" || len(cfg.RPC.Secret) != 32 {
					t.Errorf("secrets not read: %q %q %x", cfg.Admin.Token, cfg.Admin.MetricsToken, cfg.RPC.Secret)
				}
				out, _ := cfg.Encode()
				if strings.Contains(string(out), "admintoken") || strings.Contains(string(out), secret) {
					t.Errorf("encoded config leaks a secret:\n%s", out)
				}
				if !strings.Contains(string(out), filepath.Join(dir, "tok")) {
					t.Errorf("relative token_file not resolved against the config's directory:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
