package nix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// evalResult is what evalmodules.nix returns.
type evalResult struct {
	Enabled             bool
	Failed              []string
	Warnings            []string
	Undocumented        []string
	ServiceConfig       map[string]any
	EnsureServiceConfig map[string]any
	EnsureScript        *string
	WantedBy            []string
	Firewall            struct {
		AllowedTCPPorts, AllowedUDPPorts []int
		ExtraInputRules, ExtraCommands   string
	}
	Rendered       json.RawMessage
	SystemPackages []string
	OptionCount    int
	Options        []string
}

// nixpkgsLib returns NIXPKGS_LIB_PATH (a nixpkgs lib/ directory) or skips.
func nixpkgsLib(t *testing.T) string {
	t.Helper()
	p := os.Getenv("NIXPKGS_LIB_PATH")
	if p == "" {
		skip(t, "no nixpkgs lib (set NIXPKGS_LIB_PATH to a nixpkgs lib/ directory, e.g. from nix-community/nixpkgs.lib)")
	}
	if _, err := os.Stat(filepath.Join(p, "default.nix")); err != nil {
		t.Fatalf("NIXPKGS_LIB_PATH=%s has no default.nix: %v", p, err)
	}
	return p
}

func evalModule(t *testing.T, libPath, userConfig string) (evalResult, error) {
	t.Helper()
	expr := "import " + filepath.Join(repoRoot(t), "tests/nix/evalmodules.nix") + " { libPath = " + nixString(libPath) +
		"; userConfig = " + userConfig + "; }"
	var r evalResult
	err := evalJSON(t, expr, &r)
	return r, err
}

func TestEvalModules(t *testing.T) {
	libPath := nixpkgsLib(t)
	cases := []struct {
		name  string
		cfg   string
		check func(t *testing.T, r evalResult)
	}{
		{
			name: "disabled module defines nothing",
			cfg:  `{ }`,
			check: func(t *testing.T, r evalResult) {
				if r.Enabled || r.ServiceConfig != nil || len(r.Failed) != 0 {
					t.Errorf("disabled module: %+v", r)
				}
			},
		},
		{
			name: "hardened unit with credentials and readiness check",
			cfg: `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; clusterSecretFile = "/run/keys/s";
			        adminTokenFile = "/run/keys/t"; openFirewall = true; }; }`,
			check: func(t *testing.T, r evalResult) {
				if len(r.Failed) != 0 {
					t.Fatalf("assertions failed: %v", r.Failed)
				}
				want := map[string]string{
					"DynamicUser": "true", "ProtectSystem": `"strict"`, "PrivateTmp": "true", "NoNewPrivileges": "true",
					"CapabilityBoundingSet": `""`, "StateDirectory": `"entrepot"`, "RuntimeDirectory": `"entrepot"`,
					"RestrictAddressFamilies": `["AF_UNIX","AF_INET","AF_INET6","AF_NETLINK"]`,
					"SystemCallFilter":        `["@system-service"]`,
					"LoadCredential":          `["cluster-secret:/run/keys/s","admin-token:/run/keys/t"]`,
				}
				for k, w := range want {
					b, _ := json.Marshal(r.ServiceConfig[k])
					if string(b) != w {
						t.Errorf("serviceConfig.%s = %s, want %s", k, b, w)
					}
				}
				if _, ok := r.ServiceConfig["ReadWritePaths"]; ok {
					t.Errorf("ReadWritePaths set although every path is under /var/lib/entrepot")
				}
				if s, _ := r.ServiceConfig["ExecStartPost"].(string); !strings.Contains(s, "entrepot-ready") {
					t.Errorf("ExecStartPost = %q, want the readiness check", s)
				}
				if s, _ := r.ServiceConfig["ExecStart"].(string); !strings.HasSuffix(s, "-entrepot.toml") || !strings.Contains(s, "/bin/entrepot server -c ") {
					t.Errorf("ExecStart = %q", s)
				}
				if _, ok := r.ServiceConfig["ExecStartPre"]; ok {
					t.Errorf("ExecStartPre set without nodeKeyFile")
				}
				if r.EnsureServiceConfig != nil {
					t.Errorf("ensure unit defined without declarations")
				}
				if r.Firewall.ExtraCommands != "" || r.Firewall.ExtraInputRules != "" {
					t.Errorf("firewall rules added without UPnP: %+v", r.Firewall)
				}
				if got, _ := json.Marshal(r.Firewall.AllowedTCPPorts); string(got) != "[3900,3901,3902]" {
					t.Errorf("firewall TCP ports = %s", got)
				}
				if len(r.SystemPackages) != 1 || !strings.Contains(r.SystemPackages[0], "--admin-socket /run/entrepot/admin.sock") {
					t.Errorf("CLI wrapper = %q", r.SystemPackages)
				}
				if len(r.Undocumented) != 0 {
					t.Errorf("options without description/example: %v", r.Undocumented)
				}
				if r.OptionCount < 30 {
					t.Errorf("only %d options found", r.OptionCount)
				}
			},
		},
		{
			name: "declared buckets and keys get an ensure unit",
			cfg: `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; ensureBuckets = [ "photos" ];
			        ensureKeys.alice = { accessKeyId = "GK1"; secretKeyFile = "/run/keys/a"; permissions.photos.write = true; }; }; }`,
			check: func(t *testing.T, r evalResult) {
				if r.EnsureServiceConfig == nil || r.EnsureScript == nil {
					t.Fatalf("no ensure unit: %+v", r)
				}
				for _, sc := range []map[string]any{r.ServiceConfig, r.EnsureServiceConfig} {
					if sc["DynamicUser"] != true || sc["User"] != "entrepot" {
						t.Errorf("daemon and ensure unit must share the dynamic user entrepot: DynamicUser=%v User=%v", sc["DynamicUser"], sc["User"])
					}
				}
				if b, _ := json.Marshal(r.EnsureServiceConfig["LoadCredential"]); string(b) != `["key-alice:/run/keys/a"]` {
					t.Errorf("ensure LoadCredential = %s", b)
				}
				for _, w := range []string{"bucket create 'photos'", "--secret-file \"$CREDENTIALS_DIRECTORY/key-alice\" 'GK1'", "bucket allow --write --key 'GK1' 'photos'"} {
					if !strings.Contains(*r.EnsureScript, w) {
						t.Errorf("ensure script lacks %q", w)
					}
				}
				if strings.Contains(*r.EnsureScript, "delete") {
					t.Errorf("ensure script deletes although pruneUndeclared is off")
				}
			},
		},
		{
			name: "pinned node identity is installed before start",
			cfg:  `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; nodeKeyFile = "/run/keys/node"; }; }`,
			check: func(t *testing.T, r evalResult) {
				if s, _ := r.ServiceConfig["ExecStartPre"].(string); !strings.Contains(s, "entrepot-node-key") {
					t.Errorf("ExecStartPre = %v", r.ServiceConfig["ExecStartPre"])
				}
				if b, _ := json.Marshal(r.ServiceConfig["LoadCredential"]); string(b) != `["node-key:/run/keys/node"]` {
					t.Errorf("LoadCredential = %s", b)
				}
			},
		},
		{
			name: "upnp lets SSDP replies in (iptables)",
			cfg:  `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; upnp.enable = true; }; }`,
			check: func(t *testing.T, r evalResult) {
				if !strings.Contains(r.Firewall.ExtraCommands, "--sport 1900 -j nixos-fw-accept") || r.Firewall.ExtraInputRules != "" {
					t.Errorf("firewall = %+v", r.Firewall)
				}
			},
		},
		{
			name: "upnp lets SSDP replies in (nftables)",
			cfg:  `{ networking.nftables.enable = true; services.entrepot = { enable = true; zone = "a"; capacity = "1T"; upnp.enable = true; }; }`,
			check: func(t *testing.T, r evalResult) {
				if !strings.Contains(r.Firewall.ExtraInputRules, "udp sport 1900 accept") || r.Firewall.ExtraCommands != "" {
					t.Errorf("firewall = %+v", r.Firewall)
				}
			},
		},
		{
			name: "data dir outside the state directory is made writable",
			cfg:  `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; dataDir = "/mnt/disk1/entrepot"; }; }`,
			check: func(t *testing.T, r evalResult) {
				if b, _ := json.Marshal(r.ServiceConfig["ReadWritePaths"]); string(b) != `["/mnt/disk1/entrepot"]` {
					t.Errorf("ReadWritePaths = %s", b)
				}
			},
		},
		{
			name: "assertions report inline secrets and bad socket",
			cfg:  `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; settings.rpc.secret = "00"; admin.socket = "/tmp/a.sock"; }; }`,
			check: func(t *testing.T, r evalResult) {
				all := strings.Join(r.Failed, "\n")
				for _, w := range []string{"settings.rpc.secret looks like a secret", "admin.socket must be under /run/entrepot/"} {
					if !strings.Contains(all, w) {
						t.Errorf("failed assertions %q lack %q", r.Failed, w)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := evalModule(t, libPath, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

// TestEvalModulesTypeErrors: wrong types are rejected by the option types.
func TestEvalModulesTypeErrors(t *testing.T) {
	libPath := nixpkgsLib(t)
	cases := map[string]struct{ cfg, want string }{
		"zone not a string":  {`{ services.entrepot = { enable = true; zone = 1; capacity = "1T"; }; }`, "is not of type"},
		"unknown expose":     {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; upnp = { enable = true; expose = [ "ssh" ]; }; }; }`, "is not of type"},
		"rf zero":            {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; replicationFactor = 0; }; }`, "is not of type"},
		"unknown option":     {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; zones = [ ]; }; }`, "does not exist"},
		"zone missing":       {`{ services.entrepot = { enable = true; capacity = "1T"; }; }`, "zone"},
		"key without secret": {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; ensureKeys.k.accessKeyId = "GK"; }; }`, "secretKeyFile"},
		"log format":         {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; logFormat = "xml"; }; }`, "is not of type"},
		"mdns not a bool":    {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; rpc.mdns = "no"; }; }`, "is not of type"},
		"decommission":       {`{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; decommission = 1; }; }`, "is not of type"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := evalModule(t, libPath, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an evaluation error mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

// TestEvalModulesMatchesLib: the module (option defaults and all) renders
// exactly what lib.nix renders for each golden sample.
func TestEvalModulesMatchesLib(t *testing.T) {
	libPath := nixpkgsLib(t)
	rendered := renderSamples(t)
	for _, s := range goldenSamples {
		t.Run(s.name, func(t *testing.T) {
			sample := filepath.Join(repoRoot(t), "tests/nix/testdata/golden", s.name+".nix")
			r, err := evalModule(t, libPath, `{ services.entrepot = import `+sample+` // { enable = true; }; }`)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Failed) != 0 {
				t.Fatalf("assertions failed: %v", r.Failed)
			}
			var got, want any
			if err := json.Unmarshal(r.Rendered, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(rendered[s.name], &want); err != nil {
				t.Fatal(err)
			}
			if g, w := canonJSON(t, got), canonJSON(t, want); g != w {
				t.Errorf("module renders\n%s\nlib renders\n%s", g, w)
			}
		})
	}
}
