package config

import (
	"errors"
	"os"
	"testing"
)

var sizeCases = []struct {
	in   string
	want Size
	ok   bool
}{
	{"0", 0, true},
	{"4096", 4096, true},
	{"1K", 1 << 10, true},
	{"1k", 1 << 10, true},
	{"64K", 64 << 10, true},
	{"1M", 1 << 20, true},
	{"1MiB", 1 << 20, true},
	{"1mib", 1 << 20, true},
	{"1MB", 1_000_000, true},
	{"500G", 500 << 30, true},
	{"2T", 2 << 40, true},
	{"2TB", 2_000_000_000_000, true},
	{"1.5G", 3 << 29, true},
	{"0.5K", 512, true},
	{" 10 M ", 10 << 20, true},
	{"100B", 100, true},
	{"8E", 0, false},
	{"7E", 7 << 60, true},
	{"9223372036854775807", 9223372036854775807, true},
	{"9223372036854775808", 0, false},
	{"", 0, false},
	{"M", 0, false},
	{"-1M", 0, false},
	{"1Q", 0, false},
	{"1..5M", 0, false},
	{".", 0, false},
	{"1e3", 0, false},
	{"0x10", 0, false},
	{"1 000", 0, false},
}

func TestParseSize(t *testing.T) {
	for _, tc := range sizeCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseSize(%q) = %v, %v; want ok=%v", tc.in, got, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidSize) {
				t.Errorf("error %v does not wrap ErrInvalidSize", err)
			}
			if got != tc.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0", 1: "1", 1024: "1K", 1536: "1536", 1 << 20: "1M", 500 << 30: "500G", 2 << 40: "2T"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(in), got, want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, tc := range sizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSize) {
				t.Fatalf("error %v does not wrap ErrInvalidSize", err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("negative size %d from %q", v, s)
		}
		// The canonical form must parse back to the same value.
		back, err := ParseSize(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("example.toml"); err == nil {
		f.Add(string(data))
	}
	f.Add(string(devTOML))
	for _, s := range []string{"", "[s3]\nlisten = \"x\"", `block_size = "1M"`, "tags = [\"a\"]", "[rpc]\nbootstrap = []"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse([]byte(s))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// A valid config re-encodes to a valid, equivalent config.
		out, err := cfg.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("normalised config does not parse: %v\n%s", err, out)
		}
		out2, _ := again.Encode()
		if string(out) != string(out2) {
			t.Fatalf("unstable encoding:\n%s\n---\n%s", out, out2)
		}
	})
}
