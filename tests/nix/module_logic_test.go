package nix_test

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// logicCase evaluates `expr` with `l` bound to nixos-module/lib.nix and
// `c` bound to l.withDefaults of `cfg`, and compares the JSON result.
type logicCase struct {
	name string
	cfg  string // Nix attrset (user configuration, defaults filled in)
	expr string // Nix expression over l and c
	want string // expected JSON
	// contains: every string must appear in one of the returned strings
	// (for message lists); want is ignored when set.
	contains []string
}

var logicCases = []logicCase{
	{
		name: "minimal storage node renders defaults",
		cfg:  `{ zone = "home-a"; capacity = "2T"; }`,
		expr: `l.render c`,
		want: `{"admin":{"listen":"127.0.0.1:3903","socket":"/run/entrepot/admin.sock"},"capacity":"2T","data_dir":"/var/lib/entrepot/data","gateway":false,"log":{"level":"info"},"metadata_dir":"/var/lib/entrepot/meta","replication_factor":3,"rpc":{"bootstrap":[],"listen":"/ip4/0.0.0.0/tcp/3901"},"s3":{"listen":"[::]:3900"},"tags":[],"web":{"enabled":true,"listen":"[::]:3902"},"zone":"home-a"}`,
	},
	{
		name: "secrets point at the credentials directory",
		cfg:  `{ zone = "a"; capacity = "1T"; clusterSecretFile = "/run/keys/s"; adminTokenFile = "/run/keys/t"; metricsTokenFile = "/run/keys/m"; }`,
		expr: `{ rpc = (l.render c).rpc.secret_file; admin = (l.render c).admin; creds = l.loadCredentialLines (l.credentials c); }`,
		want: `{"admin":{"listen":"127.0.0.1:3903","metrics_token_file":"/run/credentials/entrepot.service/metrics-token","socket":"/run/entrepot/admin.sock","token_file":"/run/credentials/entrepot.service/admin-token"},"creds":["cluster-secret:/run/keys/s","admin-token:/run/keys/t","metrics-token:/run/keys/m"],"rpc":"/run/credentials/entrepot.service/cluster-secret"}`,
	},
	{
		name: "gateway omits capacity",
		cfg:  `{ zone = "a"; gateway = true; }`,
		expr: `{ r = l.render c; f = l.failedAssertions c; }`,
		want: `{"f":[],"r":{"admin":{"listen":"127.0.0.1:3903","socket":"/run/entrepot/admin.sock"},"data_dir":"/var/lib/entrepot/data","gateway":true,"log":{"level":"info"},"metadata_dir":"/var/lib/entrepot/meta","replication_factor":3,"rpc":{"bootstrap":[],"listen":"/ip4/0.0.0.0/tcp/3901"},"s3":{"listen":"[::]:3900"},"tags":[],"web":{"enabled":true,"listen":"[::]:3902"},"zone":"a"}}`,
	},
	{
		name: "freeform settings merge with typed options",
		cfg:  `{ zone = "a"; capacity = "1T"; settings = { block_size = "4M"; s3.region = "garage"; log.format = "json"; }; logLevel = "debug"; }`,
		expr: `let r = l.render c; in { inherit (r) block_size; s3 = r.s3; log = r.log; }`,
		want: `{"block_size":"4M","log":{"format":"json","level":"debug"},"s3":{"listen":"[::]:3900","region":"garage"}}`,
	},
	{
		name: "upnp renders [nat] only when enabled",
		cfg:  `{ zone = "a"; capacity = "1T"; upnp = { enable = true; expose = [ "rpc" "s3" ]; }; }`,
		expr: `{ on = (l.render c).nat; off = (l.render (c // { upnp = { enable = false; expose = [ "rpc" ]; }; })) ? nat; }`,
		want: `{"off":false,"on":{"expose":["rpc","s3"],"upnp":true}}`,
	},
	{
		name: "valid full configuration has no failed assertion or warning",
		cfg: `{ zone = "home-a"; capacity = "1.5TiB"; tags = [ "nas" "ssd" ]; replicationFactor = 3; cluster.zones = [ "home-a" "home-b" "home-c" ];
		        clusterSecretFile = "/run/keys/s"; bootstrapPeers = [ "/ip4/10.0.0.2/tcp/3901/p2p/12D3KooWabc" ];
		        ensureBuckets = [ "photos" ]; ensureKeys.alice = { accessKeyId = "GK1"; secretKeyFile = "/run/keys/a"; permissions.photos.read = true; }; }`,
		expr: `{ f = l.failedAssertions c; w = l.warnings c; }`,
		want: `{"f":[],"w":[]}`,
	},
	{
		name:     "replication factor above declared zones",
		cfg:      `{ zone = "home-a"; capacity = "1T"; replicationFactor = 3; cluster.zones = [ "home-a" "home-b" ]; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"replicationFactor = 3 but only 2 zone(s) are declared"},
	},
	{
		name:     "zone not among declared zones",
		cfg:      `{ zone = "home-x"; capacity = "1T"; replicationFactor = 1; cluster.zones = [ "home-a" ]; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{`zone = "home-x" is not one of services.entrepot.cluster.zones`},
	},
	{
		name:     "secret given inline in settings",
		cfg:      `{ zone = "a"; capacity = "1T"; settings.rpc.secret = "00ff"; settings.admin.token = "t"; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"settings.rpc.secret looks like a secret given inline", "settings.admin.token looks like a secret given inline"},
	},
	{
		name:     "secret file in the Nix store",
		cfg:      `{ zone = "a"; capacity = "1T"; clusterSecretFile = builtins.storeDir + "/abc-secret"; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"clusterSecretFile = /nix/store/abc-secret is in the Nix store"},
	},
	{
		name:     "typed key set through settings",
		cfg:      `{ zone = "a"; capacity = "1T"; settings.rpc.secret_file = "/etc/x"; settings.s3.listen = ":9000"; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"settings.rpc.secret_file is managed by services.entrepot.clusterSecretFile", "settings.s3.listen is managed by services.entrepot.s3.listen"},
	},
	{
		name:     "storage node without capacity",
		cfg:      `{ zone = "a"; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"capacity must be set"},
	},
	{
		name:     "gateway with capacity",
		cfg:      `{ zone = "a"; gateway = true; capacity = "1T"; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"gateway = true stores no data"},
	},
	{
		name:     "bad capacity zone tags and rf",
		cfg:      `{ zone = "a b"; capacity = "two tera"; tags = [ "x" "x" "bad tag" ]; replicationFactor = 8; upnp.expose = [ "rpc" "rpc" ]; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"is not a valid zone name", `capacity = "two tera" is not a size`, "tags contains a duplicate", "every tag must be", "between 1 and 7", "upnp.expose lists a service twice"},
	},
	{
		name:     "bad bucket and key declarations",
		cfg:      `{ zone = "a"; capacity = "1T"; ensureBuckets = [ "Photos" ]; ensureKeys = { "bad name" = { accessKeyId = "G K"; secretKeyFile = "/k"; }; b = { accessKeyId = "G_K"; secretKeyFile = "/k2"; }; c = { accessKeyId = "G_K"; secretKeyFile = "/k3"; }; }; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{`"Photos" is not a valid bucket name`, `ensureKeys."bad name": key names`, `accessKeyId = "G K" must be 3 to 128`, "two keys declare the same accessKeyId"},
	},
	{
		name:     "warnings for undeclared bucket permission and missing secret",
		cfg:      `{ zone = "a"; capacity = "1T"; bootstrapPeers = [ "/ip4/1.2.3.4/tcp/3901/p2p/x" ]; ensureKeys.k = { accessKeyId = "GK"; secretKeyFile = "/k"; permissions.other.read = true; }; upnp = { enable = true; expose = [ ]; }; }`,
		expr:     `l.warnings c`,
		contains: []string{`bucket "other" is not in services.entrepot.ensureBuckets`, "bootstrapPeers is set but clusterSecretFile is not", "maps no port"},
	},
	{
		name: "firewall opens public listeners and mDNS",
		cfg:  `{ zone = "a"; capacity = "1T"; }`,
		expr: `l.firewallPorts c`,
		want: `{"allowedTCPPorts":[3900,3901,3902],"allowedUDPPorts":[5353]}`,
	},
	{
		name: "firewall without mDNS",
		cfg:  `{ zone = "a"; capacity = "1T"; rpc.mdns = false; }`,
		expr: `l.firewallPorts c`,
		want: `{"allowedTCPPorts":[3900,3901,3902],"allowedUDPPorts":[]}`,
	},
	{
		name: "firewall with custom, disabled and public admin listeners",
		cfg:  `{ zone = "a"; capacity = "1T"; s3.listen = "0.0.0.0:9000"; web.listen = ""; admin.listen = "[::]:3903"; rpc.listen = "/ip6/::/udp/4001/quic-v1"; }`,
		expr: `l.firewallPorts c`,
		want: `{"allowedTCPPorts":[3903,9000],"allowedUDPPorts":[4001,5353]}`,
	},
	{
		name: "firewall ignores loopback listeners",
		cfg:  `{ zone = "a"; capacity = "1T"; s3.listen = "127.0.0.1:3900"; web.listen = "[::1]:3902"; rpc.listen = "/ip4/127.0.0.1/tcp/3901"; }`,
		expr: `l.firewallPorts c`,
		want: `{"allowedTCPPorts":[],"allowedUDPPorts":[]}`,
	},
	{
		name: "parseListen forms",
		cfg:  `{ zone = "a"; }`,
		expr: `map l.parseListen [ "[::]:3900" "0.0.0.0:80" ":443" "localhost:1" "/ip4/1.2.3.4/tcp/3901" "/dns4/a.example/tcp/5/p2p/x" "/run/entrepot/admin.sock" "" "nope" ]`,
		want: `[{"host":"::","port":3900,"proto":"tcp"},{"host":"0.0.0.0","port":80,"proto":"tcp"},{"host":"","port":443,"proto":"tcp"},{"host":"localhost","port":1,"proto":"tcp"},{"host":"1.2.3.4","port":3901,"proto":"tcp"},{"host":"a.example","port":5,"proto":"tcp"},null,null,null]`,
	},
	{
		name: "ensure credentials per declared key",
		cfg:  `{ zone = "a"; capacity = "1T"; ensureKeys = { alice = { accessKeyId = "GK1"; secretKeyFile = "/run/keys/a"; }; bob = { accessKeyId = "GK2"; secretKeyFile = "/run/keys/b"; }; }; }`,
		expr: `l.loadCredentialLines (l.ensureCredentials c)`,
		want: `["key-alice:/run/keys/a","key-bob:/run/keys/b"]`,
	},
	{
		name: "daemon-default options are not rendered",
		cfg:  `{ zone = "a"; capacity = "1T"; }`,
		expr: `let r = l.render c; in { top = builtins.filter (n: builtins.elem n [ "decommission" "replaces" ]) (builtins.attrNames r); s3 = r.s3 ? region; rpc = builtins.attrNames r.rpc; log = r.log; }`,
		want: `{"log":{"level":"info"},"rpc":["bootstrap","listen"],"s3":false,"top":[]}`,
	},
	{
		name: "retire and replace options render",
		cfg: `{ zone = "a"; capacity = "1T"; decommission = true; replaces = "12D3KooWB3rS3iAzh5KDcRXX261dutXqzzK18TxsmF64Li1huFjj";
		        s3.region = "garage"; rpc = { mdns = false; gossipInterval = "1m"; pingInterval = "500ms"; }; logFormat = "json"; }`,
		expr: `let r = l.render c; in { inherit (r) decommission replaces; region = r.s3.region; rpc = { inherit (r.rpc) mdns gossip_interval ping_interval; }; log = r.log; f = l.failedAssertions c; }`,
		want: `{"decommission":true,"f":[],"log":{"format":"json","level":"info"},"region":"garage","replaces":"12D3KooWB3rS3iAzh5KDcRXX261dutXqzzK18TxsmF64Li1huFjj","rpc":{"gossip_interval":"1m","mdns":false,"ping_interval":"500ms"}}`,
	},
	{
		name: "settings still set fallback keys while their option is at its default",
		cfg:  `{ zone = "a"; capacity = "1T"; settings = { decommission = true; s3.region = "garage"; rpc.mdns = false; rpc.ping_interval = "5s"; log.format = "json"; fsync = false; }; }`,
		expr: `let r = l.render c; in { inherit (r) decommission fsync; region = r.s3.region; mdns = r.rpc.mdns; ping = r.rpc.ping_interval; format = r.log.format; f = l.failedAssertions c; w = l.warnings c; }`,
		want: `{"decommission":true,"f":[],"format":"json","fsync":false,"mdns":false,"ping":"5s","region":"garage","w":[]}`,
	},
	{
		name:     "fallback key set both in settings and by its option",
		cfg:      `{ zone = "a"; capacity = "1T"; s3.region = "garage"; logFormat = "json"; settings = { s3.region = "other"; log.format = "json"; }; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{"settings.s3.region and services.entrepot.s3.region are both set", "settings.log.format and services.entrepot.logFormat are both set"},
	},
	{
		name:     "replaces must be a node id and intervals durations",
		cfg:      `{ zone = "a"; capacity = "1T"; replaces = "/ip4/10.0.0.2/tcp/3901/p2p/12D3KooWB3rS3iAzh5KDcRXX261dutXqzzK18TxsmF64Li1huFjj"; rpc = { gossipInterval = "10"; pingInterval = "-1s"; }; }`,
		expr:     `l.failedAssertions c`,
		contains: []string{`replaces = "/ip4/10.0.0.2`, "is not a node ID", `rpc.gossipInterval = "10" is not a duration`, `rpc.pingInterval = "-1s" is not a duration`},
	},
	{
		name:     "unknown settings keys warn",
		cfg:      `{ zone = "a"; capacity = "1T"; settings = { blok_size = "1M"; s3.regoin = "x"; block_size = "1M"; }; }`,
		expr:     `l.warnings c`,
		contains: []string{"settings.blok_size is not a configuration key", "settings.s3.regoin is not a configuration key"},
	},
	{
		name: "unknownSettingsPaths keeps only unknown leaves",
		cfg:  `{ zone = "a"; }`,
		expr: `l.unknownSettingsPaths { block_size = "1M"; gc_delay = "1h"; s3 = { region = "x"; nope = 1; }; extra.deep.key = true; }`,
		want: `[["extra","deep","key"],["s3","nope"]]`,
	},
	{
		name: "shellArg quotes single quotes",
		cfg:  `{ zone = "a"; }`,
		expr: `map l.shellArg [ "a" "it's" "" ]`,
		want: `["'a'","'it'\\''s'","''"]`,
	},
}

// TestModuleLogic evaluates every case in one nix-instantiate call.
func TestModuleLogic(t *testing.T) {
	lib := filepath.Join(repoRoot(t), "nixos-module/lib.nix")
	var b strings.Builder
	b.WriteString("let l = import " + lib + "; in {\n")
	for i, tc := range logicCases {
		b.WriteString("  c" + itoa(i) + " = let c = l.withDefaults (" + tc.cfg + "); in " + tc.expr + ";\n")
	}
	b.WriteString("}")
	var got map[string]json.RawMessage
	if err := evalJSON(t, b.String(), &got); err != nil {
		t.Fatalf("evaluate cases: %v", err)
	}
	for i, tc := range logicCases {
		t.Run(tc.name, func(t *testing.T) {
			raw, ok := got["c"+itoa(i)]
			if !ok {
				t.Fatal("case missing from the output")
			}
			if tc.contains != nil {
				var msgs []string
				if err := json.Unmarshal(raw, &msgs); err != nil {
					t.Fatalf("want a list of strings, got %s", raw)
				}
				all := strings.Join(msgs, "\n")
				for _, w := range tc.contains {
					if !strings.Contains(all, w) {
						t.Errorf("no message contains %q; got:\n  %s", w, strings.Join(msgs, "\n  "))
					}
				}
				return
			}
			var g, w any
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			if gs, ws := canonJSON(t, g), canonJSON(t, w); gs != ws {
				t.Errorf("got:\n%s\nwant:\n%s", gs, ws)
			}
		})
	}
}

// TestManagedKeysCoverDerived checks that every key the typed options
// render is listed in managedKeys (so a duplicate in settings is caught).
func TestManagedKeysCoverDerived(t *testing.T) {
	lib := filepath.Join(repoRoot(t), "nixos-module/lib.nix")
	expr := `let l = import ` + lib + `; c = l.withDefaults { zone = "a"; capacity = "1T"; hostname = "h"; clusterSecretFile = "/s"; adminTokenFile = "/t"; metricsTokenFile = "/m";
	  s3.rootDomain = "s3.x"; web.rootDomain = "web.x"; rpc.publicAddrs = [ "/ip4/1.2.3.4/tcp/1" ]; upnp.enable = true;
	  decommission = true; replaces = "12D3KooWB3rS3iAzh5KDcRXX261dutXqzzK18TxsmF64Li1huFjj"; s3.region = "garage";
	  rpc.mdns = false; rpc.gossipInterval = "1m"; rpc.pingInterval = "1s"; logFormat = "json"; };
	  in { derived = map (builtins.concatStringsSep ".") (l.leafPaths [ ] (l.derivedSettings c)); managed = map (k: builtins.concatStringsSep "." k.path) l.managedKeys; }`
	var got struct{ Derived, Managed []string }
	if err := evalJSON(t, expr, &got); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got.Derived)
	sort.Strings(got.Managed)
	if strings.Join(got.Derived, " ") != strings.Join(got.Managed, " ") {
		t.Errorf("derived keys %v != managed keys %v", got.Derived, got.Managed)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
