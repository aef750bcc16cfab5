package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var completeCases = []struct {
	name  string
	body  string
	parts int
	err   error
}{
	{name: "AWS example", parts: 3, body: `<CompleteMultipartUpload>
  <Part><PartNumber>1</PartNumber><ETag>"a54357aff0632cce46d942af68356b38"</ETag></Part>
  <Part><PartNumber>2</PartNumber><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag></Part>
  <Part><PartNumber>3</PartNumber><ETag>"acbd18db4cc2f85cedef654fccc4a4d8"</ETag></Part>
</CompleteMultipartUpload>`},
	{name: "namespace and checksum", parts: 1, body: `<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ChecksumCRC32>AAAAAA==</ChecksumCRC32><ETag>x</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
	{name: "trailing whitespace", parts: 1, body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>\n\n"},
	{name: "empty", body: "", err: errXML},
	{name: "garbage", body: "not xml", err: errXML},
	{name: "no parts", body: "<CompleteMultipartUpload></CompleteMultipartUpload>", err: errXML},
	{name: "wrong root", body: "<Delete><Part><PartNumber>1</PartNumber></Part></Delete>", err: errXML},
	{name: "unclosed", body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>", err: errXML},
	{name: "second root", body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload><x/>", err: errXML},
	{name: "text after root", body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>junk", err: errXML},
	{name: "bad part number", body: "<CompleteMultipartUpload><Part><PartNumber>abc</PartNumber></Part></CompleteMultipartUpload>", err: errXML},
	{name: "part number zero", body: "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber></Part></CompleteMultipartUpload>", err: ErrInvalidPartNumber},
	{name: "part number too big", body: "<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber></Part></CompleteMultipartUpload>", err: ErrInvalidPartNumber},
}

func TestDecodeComplete(t *testing.T) {
	for _, c := range completeCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeComplete(strings.NewReader(c.body))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || len(got.Parts) != c.parts {
				t.Fatalf("got %d parts, err %v", len(got.Parts), err)
			}
		})
	}
}

func TestDecodeCompleteLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i := 1; i <= maxCompleteParts+1; i++ {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>e</ETag></Part>", min(i, maxPartNumber))
	}
	b.WriteString("</CompleteMultipartUpload>")
	_, err := decodeComplete(strings.NewReader(b.String()))
	if ae := toAPIError(err, false); ae.Code != CodeMalformedXML {
		t.Fatalf("10001 parts: %v", err)
	}
	huge := "<CompleteMultipartUpload>" + strings.Repeat(" ", maxCompleteBody) + "</CompleteMultipartUpload>"
	_, err = decodeComplete(strings.NewReader(huge))
	if !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
}

var deleteCases = []struct {
	name  string
	body  string
	n     int
	quiet bool
	err   bool
}{
	{name: "AWS example", n: 2, body: `<?xml version="1.0" encoding="UTF-8"?>
<Delete>
    <Object><Key>sample1.txt</Key></Object>
    <Object><Key>sample2.txt</Key></Object>
</Delete>`},
	{name: "quiet", n: 1, quiet: true, body: `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a &amp; b</Key><VersionId>null</VersionId></Object></Delete>`},
	{name: "no objects", body: "<Delete></Delete>", err: true},
	{name: "garbage", body: "<Delete><Object><Key>a</Key></Object>", err: true},
	{name: "wrong root", body: "<Remove><Object><Key>a</Key></Object></Remove>", err: true},
	{name: "bad quiet", body: "<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>", err: true},
}

func TestDecodeDelete(t *testing.T) {
	for _, c := range deleteCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeDelete(strings.NewReader(c.body))
			if c.err {
				if ae := toAPIError(err, false); err == nil || ae.Code != CodeMalformedXML {
					t.Fatalf("err = %v, want MalformedXML", err)
				}
				return
			}
			if err != nil || len(got.Objects) != c.n || got.Quiet != c.quiet {
				t.Fatalf("got %+v, err %v", got, err)
			}
		})
	}
	var b strings.Builder
	b.WriteString("<Delete>")
	for i := 0; i <= maxDeleteKeys; i++ {
		fmt.Fprintf(&b, "<Object><Key>k%d</Key></Object>", i)
	}
	b.WriteString("</Delete>")
	if _, err := decodeDelete(strings.NewReader(b.String())); toAPIError(err, false).Code != CodeMalformedXML {
		t.Fatalf("1001 keys: %v", err)
	}
}

var createBucketCases = []struct {
	name, body, want string
	err              bool
}{
	{name: "empty", body: ""},
	{name: "whitespace", body: "  \n"},
	{name: "AWS example", body: `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>Europe</LocationConstraint></CreateBucketConfiguration>`, want: "Europe"},
	{name: "garbage", body: "<CreateBucketConfiguration>", err: true},
}

func TestDecodeCreateBucket(t *testing.T) {
	for _, c := range createBucketCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeCreateBucket(strings.NewReader(c.body))
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func FuzzDecodeComplete(f *testing.F) {
	for _, c := range completeCases {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c, err := decodeComplete(strings.NewReader(body))
		if err != nil {
			if code := toAPIError(err, false).Code; code != CodeMalformedXML && code != CodeInvalidArgument {
				t.Fatalf("error maps to %s: %v", code, err)
			}
			return
		}
		if len(c.Parts) == 0 || len(c.Parts) > maxCompleteParts {
			t.Fatalf("accepted %d parts", len(c.Parts))
		}
	})
}

func FuzzDecodeDelete(f *testing.F) {
	for _, c := range deleteCases {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d, err := decodeDelete(strings.NewReader(body))
		if err != nil {
			if code := toAPIError(err, false).Code; code != CodeMalformedXML {
				t.Fatalf("error maps to %s: %v", code, err)
			}
			return
		}
		if len(d.Objects) == 0 || len(d.Objects) > maxDeleteKeys {
			t.Fatalf("accepted %d objects", len(d.Objects))
		}
	})
}

func FuzzDecodeCreateBucket(f *testing.F) {
	for _, c := range createBucketCases {
		f.Add(c.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if _, err := decodeCreateBucket(strings.NewReader(body)); err != nil {
			if code := toAPIError(err, false).Code; code != CodeMalformedXML {
				t.Fatalf("error maps to %s: %v", code, err)
			}
		}
	})
}

func TestChecksumElements(t *testing.T) {
	done := completeMultipartUploadResult{NS: xmlNS, Location: "http://h/b/k", Bucket: "b", Key: "k", ETag: `"e"`}
	done.ChecksumCRC32, done.ChecksumCRC32C, done.ChecksumCRC64NVME, done.ChecksumSHA1, done.ChecksumSHA256 = checksumFields(
		map[string]string{"CRC32": "c1", "CRC32C": "c2", "CRC64NVME": "c3", "SHA1": "s1", "SHA256": "s2"})
	part := partXML{PartNumber: 1, LastModified: "t", ETag: `"e"`, Size: 3}
	part.ChecksumCRC32, part.ChecksumCRC32C, part.ChecksumCRC64NVME, part.ChecksumSHA1, part.ChecksumSHA256 = checksumFields(
		map[string]string{"SHA256": "s2"})
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"complete result, every checksum", done, `<CompleteMultipartUploadResult xmlns="` + xmlNS + `"><Location>http://h/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&#34;e&#34;</ETag>` +
			`<ChecksumCRC32>c1</ChecksumCRC32><ChecksumCRC32C>c2</ChecksumCRC32C><ChecksumCRC64NVME>c3</ChecksumCRC64NVME><ChecksumSHA1>s1</ChecksumSHA1><ChecksumSHA256>s2</ChecksumSHA256></CompleteMultipartUploadResult>`},
		{"part, one checksum", part, `<partXML><PartNumber>1</PartNumber><LastModified>t</LastModified><ETag>&#34;e&#34;</ETag><Size>3</Size><ChecksumSHA256>s2</ChecksumSHA256></partXML>`},
		{"part, no checksum", partXML{PartNumber: 2, ETag: "x"}, `<partXML><PartNumber>2</PartNumber><LastModified></LastModified><ETag>x</ETag><Size>0</Size></partXML>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := xml.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Errorf("got %s (err %v)\nwant %s", b, err, tc.want)
			}
		})
	}
	got, err := decodeComplete(strings.NewReader(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag>` +
		`<ChecksumCRC64NVME>n</ChecksumCRC64NVME><ChecksumSHA256>s</ChecksumSHA256></Part></CompleteMultipartUpload>`))
	if err != nil || len(got.Parts) != 1 || got.Parts[0].ChecksumCRC64NVME != "n" || got.Parts[0].ChecksumSHA256 != "s" || got.Parts[0].ChecksumCRC32 != "" {
		t.Errorf("decoded part checksums: %+v, %v", got.Parts, err)
	}
}
