package nix_test

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

var genVMKeys = flag.Bool("gen-vm-keys", false, "create missing node identity fixtures in vm/keys and rewrite vm/peers.json")

// vmNodes are the VM test nodes with a pinned identity, so that their
// bootstrapPeers can name each other's peer ids before first start.
var vmNodes = []string{"single", "n1a", "n1b", "n2", "n3", "decl"}

// identityVersion matches daemon/p2p: one version byte, then the
// libp2p-marshalled private key.
const identityVersion = 1

// TestVMIdentities checks that vm/keys/<node>.key are well-formed node
// identities (the daemon's node_key format) and that vm/peers.json lists
// their peer ids.
func TestVMIdentities(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "tests/nix/vm")
	peers := map[string]string{}
	for _, n := range vmNodes {
		path := filepath.Join(dir, "keys", n+".key")
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) && *genVMKeys {
			k, _, gerr := crypto.GenerateEd25519Key(rand.Reader)
			if gerr != nil {
				t.Fatal(gerr)
			}
			raw, merr := crypto.MarshalPrivateKey(k)
			if merr != nil {
				t.Fatal(merr)
			}
			b = append([]byte{identityVersion}, raw...)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatalf("read %s (create with -gen-vm-keys): %v", path, err)
		}
		if len(b) < 2 || b[0] != identityVersion {
			t.Fatalf("%s: not a version-%d node identity", path, identityVersion)
		}
		k, err := crypto.UnmarshalPrivateKey(b[1:])
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		peers[n] = id.String()
	}
	want, err := json.MarshalIndent(peers, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	pj := filepath.Join(dir, "peers.json")
	if *genVMKeys {
		if err := os.WriteFile(pj, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(pj)
	if err != nil {
		t.Fatalf("read %s (create with -gen-vm-keys): %v", pj, err)
	}
	if string(got) != string(want) {
		t.Errorf("%s does not match the keys:\n got %s\nwant %s", pj, got, want)
	}
}

// TestNodeKeyScript installs a pinned identity with the module's
// ExecStartPre script, checks a real dev server adopts it, and checks the
// script refuses to replace an existing different identity.
func TestNodeKeyScript(t *testing.T) {
	needTool(t, "nix-instantiate")
	needTool(t, "bash")
	root := repoRoot(t)
	dir := t.TempDir()
	meta := filepath.Join(dir, "dev", "meta")
	expr := `let l = import ` + filepath.Join(root, "nixos-module/lib.nix") + `; in l.nodeKeyScript (l.withDefaults { zone = "a"; metadataDir = ` + nixString(meta) + `; })`
	var script string
	if err := evalJSON(t, expr, &script); err != nil {
		t.Fatal(err)
	}
	sf := filepath.Join(dir, "node-key.sh")
	if err := os.WriteFile(sf, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	creds := func(node string) string {
		c := filepath.Join(dir, "creds-"+node)
		if err := os.MkdirAll(c, 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, "tests/nix/vm/keys", node+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c, "node-key"), b, 0o400); err != nil {
			t.Fatal(err)
		}
		return c
	}
	n1a := creds("n1a")
	for i := 0; i < 2; i++ { // the second run finds the same key: no-op
		if _, err := run(t, dir, []string{"CREDENTIALS_DIRECTORY=" + n1a}, "bash", sf); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	st, err := os.Stat(filepath.Join(meta, "node_key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("node_key mode = %o, want 600", st.Mode().Perm())
	}
	_, err = run(t, dir, []string{"CREDENTIALS_DIRECTORY=" + creds("n2")}, "bash", sf)
	if err == nil || !strings.Contains(err.Error(), "never replaced silently") {
		t.Errorf("a different key must be refused, got %v", err)
	}

	bin, why := entrepotBin(t)
	if bin == "" {
		skip(t, "identity installed, but the daemon check needs a binary: "+why)
	}
	sock, _ := startDevServer(t, bin, filepath.Join(dir, "dev"))
	var peers map[string]string
	pb, err := os.ReadFile(filepath.Join(root, "tests/nix/vm/peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pb, &peers); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, nil, bin, "--admin-socket", sock, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, peers["n1a"]) {
		t.Errorf("daemon did not adopt the pinned identity %s; status:\n%s", peers["n1a"], out)
	}
}
