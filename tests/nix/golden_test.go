package nix_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/entrepot/entrepot/daemon/config"
)

var update = flag.Bool("update", false, "rewrite the golden TOML files in testdata/golden")

// goldenSamples are testdata/golden/<name>.nix; needsNat marks samples
// whose rendering has a [nat] table (accepted only once the daemon knows it).
var goldenSamples = []struct {
	name     string
	needsNat bool
}{
	{"single", false},
	{"home", true},
	{"gateway", false},
	{"replacement", false},
	{"retiring", false},
}

// renderSamples renders every sample with nixos-module/lib.nix in one call.
func renderSamples(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	root := repoRoot(t)
	var b strings.Builder
	b.WriteString("let l = import " + filepath.Join(root, "nixos-module/lib.nix") + "; in {\n")
	for _, s := range goldenSamples {
		b.WriteString("  " + s.name + " = l.render (l.withDefaults (import " +
			filepath.Join(root, "tests/nix/testdata/golden", s.name+".nix") + "));\n")
	}
	b.WriteString("}")
	var got map[string]json.RawMessage
	if err := evalJSON(t, b.String(), &got); err != nil {
		t.Fatalf("render samples: %v", err)
	}
	return got
}

// decodeNumbers decodes JSON keeping integers as int64 (TOML has both).
func decodeNumbers(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	out, err := fixNumbers(v)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

func fixNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("parse number %s: %w", x, err)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			f, err := fixNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = f
		}
		return x, nil
	case []any:
		for i, e := range x {
			f, err := fixNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = f
		}
		return x, nil
	default:
		return v, nil
	}
}

// toTOML renders like pkgs.formats.toml would, value for value (the layout
// is BurntSushi/toml's: sorted keys, tables after plain keys).
func toTOML(v map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Rendered by nixos-module/lib.nix (services.entrepot); regenerate with\n# go test ./tests/nix -run TestGoldenTOML -update\n")
	if err := toml.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("encode toml: %w", err)
	}
	return buf.Bytes(), nil
}

// TestGoldenTOML compares the TOML rendered for each sample with
// testdata/golden/<name>.toml, and checks the golden file decodes back to
// exactly the rendered values.
func TestGoldenTOML(t *testing.T) {
	rendered := renderSamples(t)
	for _, s := range goldenSamples {
		t.Run(s.name, func(t *testing.T) {
			v, err := decodeNumbers(rendered[s.name])
			if err != nil {
				t.Fatal(err)
			}
			got, err := toTOML(v)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(repoRoot(t), "tests/nix/testdata/golden", s.name+".toml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (create it with -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered TOML differs from %s (rerun with -update if intended):\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			var back map[string]any
			if _, err := toml.Decode(string(want), &back); err != nil {
				t.Fatalf("golden does not parse as TOML: %v", err)
			}
			if !reflect.DeepEqual(normalize(back), normalize(v)) {
				t.Errorf("golden decodes to\n%v\nbut the module renders\n%v", back, v)
			}
		})
	}
}

// normalize makes []string and []any comparable.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalize(e)
		}
		return l
	case []string:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = e
		}
		return l
	case []map[string]any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalize(e)
		}
		return l
	default:
		return v
	}
}

var (
	binOnce sync.Once
	binPath string
	binWhy  string
	binDir  string // removed by TestMain
)

// entrepotBin returns ENTREPOT_BIN, or builds ./cli/entrepot once, or "" and
// the reason it is not available.
func entrepotBin(t *testing.T) (string, string) {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("ENTREPOT_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				binWhy = "ENTREPOT_BIN=" + p + " does not exist"
				return
			}
			binPath = p
			return
		}
		root := repoRoot(t)
		mains, _ := filepath.Glob(filepath.Join(root, "cli/entrepot/*.go"))
		if len(mains) == 0 {
			binWhy = "no entrepot binary: ENTREPOT_BIN unset and cli/entrepot has no Go files yet"
			return
		}
		dir, err := os.MkdirTemp("", "entrepot-nixtest-")
		if err != nil {
			binWhy = "temp dir: " + err.Error()
			return
		}
		binDir = dir
		out := filepath.Join(dir, "entrepot")
		if _, err := run(t, root, nil, "go", "build", "-o", out, "./cli/entrepot"); err != nil {
			binWhy = "go build ./cli/entrepot failed: " + err.Error()
			return
		}
		binPath = out
	})
	return binPath, binWhy
}

// materialize writes a golden file with the credential, state and runtime
// paths moved into a temporary directory that holds well-formed secret
// files (mode 0600, as systemd LoadCredential provides them).
func materialize(t *testing.T, name string) (file, text string) {
	t.Helper()
	golden, err := os.ReadFile(filepath.Join(repoRoot(t), "tests/nix/testdata/golden", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	for _, d := range []string{creds, filepath.Join(dir, "state"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	secrets := map[string]string{
		"cluster-secret": strings.Repeat("0123456789abcdef", 4),
		"admin-token":    "admin-token-for-check-config",
		"metrics-token":  "metrics-token-for-check-config",
	}
	for n, v := range secrets {
		if err := os.WriteFile(filepath.Join(creds, n), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text = strings.NewReplacer(
		"/run/credentials/entrepot.service/", creds+"/",
		"/var/lib/entrepot/", filepath.Join(dir, "state")+"/",
		"/run/entrepot/", filepath.Join(dir, "run")+"/",
	).Replace(string(golden))
	file = filepath.Join(dir, "entrepot.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, text
}

// withoutNat writes a copy of a config file without its [nat] table.
func withoutNat(t *testing.T, file string) string {
	t.Helper()
	var v map[string]any
	if _, err := toml.DecodeFile(file, &v); err != nil {
		t.Fatal(err)
	}
	delete(v, "nat")
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(file, ".toml") + "-nonat.toml"
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenConfigLoad loads each golden file with daemon/config (decode,
// unknown keys, validation, secret files), the code behind --check-config.
func TestGoldenConfigLoad(t *testing.T) {
	for _, s := range goldenSamples {
		t.Run(s.name, func(t *testing.T) {
			file, text := materialize(t, s.name)
			_, err := config.Load(file)
			if err == nil {
				return
			}
			if s.needsNat && strings.Contains(err.Error(), "nat") {
				// Everything but [nat] must still be accepted.
				if _, err2 := config.Load(withoutNat(t, file)); err2 != nil {
					t.Fatalf("daemon/config rejects the config even without [nat]:\n%s\n%v", text, err2)
				}
				skip(t, "daemon/config does not know the [nat] table yet (natpunch config not wired; the rest of the file is accepted): "+err.Error())
			}
			t.Errorf("daemon/config rejects the config rendered by the module:\n%s\n%v", text, err)
		})
	}
}

// TestGoldenCheckConfig runs `entrepot server -c <golden> --check-config`
// on each golden file (paths moved as in materialize).
func TestGoldenCheckConfig(t *testing.T) {
	for _, s := range goldenSamples {
		t.Run(s.name, func(t *testing.T) {
			bin, why := entrepotBin(t)
			if bin == "" {
				skip(t, why)
			}
			file, text := materialize(t, s.name)
			_, err := run(t, filepath.Dir(file), nil, bin, "server", "-c", file, "--check-config")
			if err == nil {
				return
			}
			if s.needsNat && strings.Contains(err.Error(), "nat") {
				skip(t, "this entrepot does not know the [nat] table yet (natpunch config not wired): "+err.Error())
			}
			t.Errorf("entrepot rejects the config rendered by the module:\n%s\n%v", text, err)
		})
	}
}
