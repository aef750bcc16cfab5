package daemon

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/entrepot/entrepot/daemon/config"
)

func TestNATConfig(t *testing.T) {
	cases := []struct {
		name   string
		upnp   bool
		expose []string
		s3     string
		want   string // fmt of the exposed ports; "off" when NAT is nil
	}{
		{"off", false, []string{"rpc", "s3"}, "[::]:3900", "off"},
		{"rpc only", true, []string{"rpc"}, "[::]:3900", "[]"},
		{"s3 and web", true, []string{"rpc", "s3", "web"}, "[::]:3900", "[{s3 3900} {web 3902}]"},
		{"s3 on port 0 skipped", true, []string{"s3"}, "127.0.0.1:0", "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.NAT.UPnP, cfg.NAT.Expose, cfg.S3.Listen = tc.upnp, tc.expose, tc.s3
			nc, exp := natConfig(cfg, slog.New(slog.DiscardHandler))
			got := "off"
			if nc != nil {
				got = fmt.Sprint(exp)
				if exp == nil {
					got = "[]"
				}
			}
			if got != tc.want {
				t.Errorf("natConfig = %s, want %s", got, tc.want)
			}
		})
	}
}
