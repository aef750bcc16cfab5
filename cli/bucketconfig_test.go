package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/daemon/admin"
)

func TestBucketWebsiteAndQuotaCommands(t *testing.T) {
	dir, _ := startDev(t)
	cmd := func(args ...string) []string { return append([]string{"--data-dir", dir}, args...) }
	if r := run(t, nil, "", cmd("bucket", "create", "site")...); r.code != 0 {
		t.Fatalf("bucket create: %+v", r)
	}
	r := run(t, nil, "", cmd("bucket", "website", "--allow", "--error-document", "404.html", "site", "--json")...)
	var info admin.BucketConfigInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.Website == nil ||
		info.Website.IndexSuffix != "index.html" || info.Website.ErrorDocument != "404.html" {
		t.Fatalf("website --allow: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "website", "--deny", "site")...)
	if r.code != 0 || !strings.Contains(r.stdout, "no longer served") {
		t.Fatalf("website --deny: %+v", r)
	}
	for _, bad := range [][]string{
		{"bucket", "website", "site"},
		{"bucket", "website", "--allow", "--deny", "site"},
		{"bucket", "quota", "site"},
		{"bucket", "quota", "--max-size", "lots", "site"},
	} {
		if r := run(t, nil, "", cmd(bad...)...); r.code == 0 {
			t.Fatalf("%v succeeded: %+v", bad, r)
		}
	}
	if r := run(t, nil, "", cmd("bucket", "website", "--allow", "nosuch")...); r.code == 0 {
		t.Fatalf("website on a missing bucket: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "quota", "--max-size", "2G", "--max-objects", "100", "site", "--json")...)
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.Quota.MaxSize != 2<<30 || info.Quota.MaxObjects != 100 {
		t.Fatalf("quota: %+v", r)
	}
	r = run(t, nil, "", cmd("bucket", "quota", "--max-objects", "0", "site")...)
	if r.code != 0 || !strings.Contains(r.stdout, "max size 2147483648, max objects unlimited") {
		t.Fatalf("quota update: %+v", r)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"10K", 10 << 10, false}, {"5MiB", 5 << 20, false},
		{"2g", 2 << 30, false}, {"1T", 1 << 40, false}, {"-1", 0, true}, {"x", 0, true}, {"", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "10K", "5MiB", "2g", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && n < 0 {
			t.Fatalf("negative size %d from %q", n, s)
		}
	})
}
