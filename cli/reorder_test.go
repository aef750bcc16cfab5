package cli

import (
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(Env{})
	cases := []struct{ in, want string }{
		{"entrepot bucket allow photos --key k --read", "entrepot bucket allow --key k --read photos"},
		{"entrepot --data-dir d key create alice --json", "entrepot --data-dir d key create --json alice"},
		{"entrepot -c f server --dev", "entrepot -c f server --dev"},
		{"entrepot key set alice --can-create-bucket=false", "entrepot key set --can-create-bucket=false alice"},
		{"entrepot key import GKx --secret-file f --name n", "entrepot key import --secret-file f --name n GKx"},
		{"entrepot key info -- -weird", "entrepot key info -- -weird"},
		{"entrepot nope a --b", "entrepot nope a --b"},
		{"entrepot", "entrepot"},
		{"entrepot -c", "entrepot -c"},
		{"entrepot key import GKx --name", "entrepot key import --name GKx"},
		{"entrepot key import - --name n", "entrepot key import --name n -"},
		{"entrepot --data-dir d --json key list", "entrepot --data-dir d --json key list"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// FuzzInterspersed: reordering never loses, adds or duplicates a token.
func FuzzInterspersed(f *testing.F) {
	f.Add("entrepot bucket allow photos --key k --read")
	f.Add("entrepot --data-dir d key create alice --json")
	f.Add("entrepot key info -- -weird")
	f.Add("entrepot -c")
	app := newApp(Env{})
	f.Fuzz(func(t *testing.T, line string) {
		in := strings.Fields(line)
		out := interspersed(app, in)
		if len(out) != len(in) {
			t.Fatalf("%q -> %q: length changed", in, out)
		}
		count := map[string]int{}
		for _, s := range in {
			count[s]++
		}
		for _, s := range out {
			count[s]--
		}
		for s, n := range count {
			if n != 0 {
				t.Fatalf("%q -> %q: token %q count off by %d", in, out, s, n)
			}
		}
		if len(in) > 0 && out[0] != in[0] {
			t.Fatalf("program name moved: %q -> %q", in, out)
		}
	})
}
