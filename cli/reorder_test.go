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
