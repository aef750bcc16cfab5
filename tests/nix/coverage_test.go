package nix_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/entrepot/entrepot/daemon/config"
)

// daemonKeys lists the TOML keys a struct decodes, as dotted paths
// ("rpc.mdns"), from its `toml` tags: untagged fields and `toml:"-"` are
// not keys, and a struct field is a table unless it decodes itself from
// text (like a size or a duration).
func daemonKeys(typ reflect.Type, prefix string) []string {
	textual := reflect.TypeFor[encoding.TextUnmarshaler]()
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textual) {
			keys = append(keys, daemonKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// mappedKey is one managedKeys entry of lib.nix, with its option's
// default when it is a fallback key.
type mappedKey struct {
	Key      string          `json:"key"`
	Option   string          `json:"option"`
	Fallback bool            `json:"fallback"`
	Default  json.RawMessage `json:"default"`
}

// moduleKeys reads lib.nix's managedKeys and settingsOnlyKeys.
func moduleKeys(t *testing.T) (managed []mappedKey, settingsOnly []string) {
	t.Helper()
	lib := filepath.Join(repoRoot(t), "nixos-module/lib.nix")
	expr := `let l = import ` + lib + `; dot = builtins.concatStringsSep "."; in {
	  managed = map (k: { key = dot k.path; inherit (k) option; fallback = k.fallback or false;
	    default = if k.fallback or false then l.getPath (l.optionPath k.option) l.defaults else null; }) l.managedKeys;
	  settingsOnly = map dot l.settingsOnlyKeys; }`
	var got struct {
		Managed      []mappedKey `json:"managed"`
		SettingsOnly []string    `json:"settingsOnly"`
	}
	if err := evalJSON(t, expr, &got); err != nil {
		t.Fatalf("read managedKeys and settingsOnlyKeys: %v", err)
	}
	return got.Managed, got.SettingsOnly
}

// coverageProblems compares the daemon's keys with the keys the module
// maps to typed options and the keys it documents as settings-only.
func coverageProblems(daemon, managed, settingsOnly []string) []string {
	var problems []string
	seen := map[string]string{}
	for _, l := range []struct {
		name string
		keys []string
	}{{"managedKeys", managed}, {"settingsOnlyKeys", settingsOnly}} {
		for _, k := range l.keys {
			if prev, ok := seen[k]; ok {
				problems = append(problems, fmt.Sprintf("%q is listed twice (%s and %s in nixos-module/lib.nix)", k, prev, l.name))
				continue
			}
			seen[k] = l.name
			if !slices.Contains(daemon, k) {
				problems = append(problems, fmt.Sprintf("%s in nixos-module/lib.nix lists %q, which daemon/config does not accept", l.name, k))
			}
		}
	}
	for _, k := range daemon {
		if _, ok := seen[k]; !ok {
			problems = append(problems, fmt.Sprintf("daemon/config key %q is neither mapped to a typed option (managedKeys) nor listed as reachable through settings (settingsOnlyKeys) in nixos-module/lib.nix; add one and document it in nixos-module/README.md", k))
		}
	}
	return problems
}

// readmeRow returns the line of the key table in nixos-module/README.md
// that documents key, or "".
func readmeRow(readme, key string) string {
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "| `"+key+"` |") {
			return line
		}
	}
	return ""
}

// TestModuleCoversDaemonConfig fails when daemon/config accepts a key that
// the module neither maps to a typed option nor documents as reachable
// through settings, or when the module lists a key the daemon dropped.
func TestModuleCoversDaemonConfig(t *testing.T) {
	daemon := daemonKeys(reflect.TypeFor[config.Config](), "")
	for _, k := range []string{"zone", "replaces", "s3.region", "rpc.mdns", "log.format"} {
		if !slices.Contains(daemon, k) {
			t.Fatalf("daemon keys %v lack %q: the struct-tag walk is broken", daemon, k)
		}
	}
	for _, k := range []string{"rpc.secret", "admin.token", "dev_dir", "DevDir"} {
		if slices.Contains(daemon, k) {
			t.Fatalf("daemon keys %v contain %q, which is never decoded", daemon, k)
		}
	}
	managed, settingsOnly := moduleKeys(t)
	var managedNames []string
	for _, m := range managed {
		managedNames = append(managedNames, m.Key)
	}
	for _, p := range coverageProblems(daemon, managedNames, settingsOnly) {
		t.Error(p)
	}

	root := repoRoot(t)
	module, err := os.ReadFile(filepath.Join(root, "nixos-module/default.nix"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "nixos-module/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range managed {
		leaf := m.Option[strings.LastIndexByte(m.Option, '.')+1:]
		decl := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(leaf) + `\s*=\s*(mkOption|listenOption)\b`)
		if !decl.Match(module) {
			t.Errorf("managedKeys maps %q to option %q, but nixos-module/default.nix declares no %q option", m.Key, m.Option, leaf)
		}
		if row := readmeRow(string(readme), m.Key); !strings.Contains(row, "`"+m.Option+"`") {
			t.Errorf("nixos-module/README.md has no key table row for `%s` naming option `%s` (row: %q)", m.Key, m.Option, row)
		}
	}
	for _, k := range settingsOnly {
		if row := readmeRow(string(readme), k); !strings.Contains(row, "`settings."+k+"`") {
			t.Errorf("nixos-module/README.md has no key table row for `%s` naming `settings.%s` (row: %q)", k, k, row)
		}
	}
}

// TestFallbackDefaultsMatchDaemon: a fallback option is not rendered at its
// default, so that default must be the daemon's (null stands for "").
func TestFallbackDefaultsMatchDaemon(t *testing.T) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(config.Default()); err != nil {
		t.Fatal(err)
	}
	var defaults map[string]any
	if _, err := toml.Decode(buf.String(), &defaults); err != nil {
		t.Fatal(err)
	}
	managed, _ := moduleKeys(t)
	n := 0
	for _, m := range managed {
		if !m.Fallback {
			continue
		}
		n++
		var v any = defaults
		for _, p := range strings.Split(m.Key, ".") {
			tbl, _ := v.(map[string]any)
			v = tbl[p]
		}
		if v == nil {
			v = "" // BurntSushi/toml omits nothing here, but an absent key is the zero value
		}
		var lib any
		if err := json.Unmarshal(m.Default, &lib); err != nil {
			t.Fatal(err)
		}
		if lib == nil {
			lib = ""
		}
		if fmt.Sprint(lib) != fmt.Sprint(v) {
			t.Errorf("option %s defaults to %v in nixos-module/lib.nix but the daemon's %s defaults to %v", m.Option, lib, m.Key, v)
		}
	}
	if n < 7 {
		t.Errorf("only %d fallback keys found in managedKeys", n)
	}
}

// TestCoverageProblemsDetects proves the coverage check fails on a key the
// daemon gains, a key it drops, and a key listed twice.
func TestCoverageProblemsDetects(t *testing.T) {
	daemon := []string{"zone", "fsync", "rpc.mdns"}
	cases := []struct {
		name                  string
		daemon, managed, only []string
		want                  []string
	}{
		{"complete", daemon, []string{"zone", "rpc.mdns"}, []string{"fsync"}, nil},
		{"daemon gains a key", append(slices.Clone(daemon), "rpc.new_knob"), []string{"zone", "rpc.mdns"}, []string{"fsync"}, []string{`"rpc.new_knob" is neither mapped`}},
		{"daemon drops a key", []string{"zone", "fsync"}, []string{"zone", "rpc.mdns"}, []string{"fsync"}, []string{`managedKeys in nixos-module/lib.nix lists "rpc.mdns"`}},
		{"listed twice", daemon, []string{"zone", "rpc.mdns", "fsync"}, []string{"fsync"}, []string{`"fsync" is listed twice`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := coverageProblems(tc.daemon, tc.managed, tc.only)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q lacks %q", got[i], w)
				}
			}
		})
	}
}

// TestDaemonKeysWalk checks the struct-tag walk on a fixture.
func TestDaemonKeysWalk(t *testing.T) {
	type inner struct {
		A        string          `toml:"a"`
		Secret   string          `toml:"-"`
		Interval config.Duration `toml:"interval"`
	}
	type outer struct {
		Top     int         `toml:"top,omitempty"`
		Size    config.Size `toml:"size"`
		Section inner       `toml:"section"`
		Skipped string      `toml:"-"`
		NoTag   string
		List    []string `toml:"list"`
		Nested  struct {
			B int `toml:"b"`
		} `toml:"nested"`
	}
	got := daemonKeys(reflect.TypeFor[outer](), "")
	want := []string{"top", "size", "section.a", "section.interval", "list", "nested.b"}
	if !slices.Equal(got, want) {
		t.Errorf("daemonKeys = %q, want %q", got, want)
	}
}

// TestEvalModulesDeclaresMappedOptions: every option managedKeys names is
// declared by the module (the exact check behind the textual one in
// TestModuleCoversDaemonConfig; needs a nixpkgs lib).
func TestEvalModulesDeclaresMappedOptions(t *testing.T) {
	libPath := nixpkgsLib(t)
	r, err := evalModule(t, libPath, `{ services.entrepot = { enable = true; zone = "a"; capacity = "1T"; }; }`)
	if err != nil {
		t.Fatal(err)
	}
	managed, _ := moduleKeys(t)
	for _, m := range managed {
		if !slices.Contains(r.Options, "services.entrepot."+m.Option) {
			t.Errorf("managedKeys maps %q to services.entrepot.%s, which the module does not declare", m.Key, m.Option)
		}
	}
}
