package s3

import (
	"strings"
	"testing"
)

var copySourceCases = []struct {
	name, in    string
	bucket, key string
	err         bool
}{
	{name: "AWS example", in: "/amzn-s3-demo-bucket/reports/january.pdf", bucket: "amzn-s3-demo-bucket", key: "reports/january.pdf"},
	{name: "no leading slash", in: "awsexamplebucket/reports/january.pdf", bucket: "awsexamplebucket", key: "reports/january.pdf"},
	{name: "version id ignored", in: "/b/k.txt?versionId=QUpfdndhfd8438MNFDN93jdnJFkdmqnh893", bucket: "b", key: "k.txt"},
	{name: "url encoded", in: "b/dir/h%C3%A9llo%20w%C3%B6rld.txt", bucket: "b", key: "dir/héllo wörld.txt"},
	{name: "encoded question mark", in: "b/what%3F.txt", bucket: "b", key: "what?.txt"},
	{name: "plus is literal", in: "b/a+b", bucket: "b", key: "a+b"},
	{name: "trailing slash key", in: "b/dir/", bucket: "b", key: "dir/"},
	{name: "encoded slash", in: "b%2Fk", bucket: "b", key: "k"},
	{name: "bucket only", in: "/b", err: true},
	{name: "empty key", in: "/b/", err: true},
	{name: "empty", in: "", err: true},
	{name: "bad escape", in: "b/%zz", err: true},
}

func TestParseCopySource(t *testing.T) {
	for _, c := range copySourceCases {
		t.Run(c.name, func(t *testing.T) {
			b, k, err := parseCopySource(c.in)
			if c.err {
				if toAPIError(err, false).Code != CodeInvalidArgument {
					t.Fatalf("err %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil || b != c.bucket || k != c.key {
				t.Fatalf("got %q %q %v", b, k, err)
			}
		})
	}
}

func FuzzParseCopySource(f *testing.F) {
	for _, c := range copySourceCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b, k, err := parseCopySource(in)
		if err != nil {
			if toAPIError(err, false).Code != CodeInvalidArgument {
				t.Fatalf("error maps to %s", toAPIError(err, false).Code)
			}
			return
		}
		if b == "" || k == "" || strings.Contains(b, "/") {
			t.Fatalf("bad split %q -> %q %q", in, b, k)
		}
	})
}
