package s3

import (
	"net/url"
	"strings"
	"testing"
)

var tokenCases = []string{"", "a", "photos/2006/", "été/日本", strings.Repeat("k", 1024)}

func TestTokenRoundTrip(t *testing.T) {
	for _, m := range tokenCases {
		tok := encodeToken(m)
		got, err := decodeToken(tok)
		if err != nil || got != m {
			t.Fatalf("%q: got %q, %v", m, got, err)
		}
		if strings.Contains(tok, m) && m != "" {
			t.Fatalf("token %q is not opaque", tok)
		}
	}
	// "", a bare padding, version byte 0, and a token with invalid UTF-8.
	for _, bad := range []string{"", "!!!", "AA", "AHg", "Af8"} {
		if _, err := decodeToken(bad); err == nil || toAPIError(err, false).Code != CodeInvalidArgument {
			t.Fatalf("token %q accepted: %v", bad, err)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, m := range tokenCases {
		f.Add(encodeToken(m))
	}
	f.Add("garbage==")
	f.Fuzz(func(t *testing.T, tok string) {
		m, err := decodeToken(tok)
		if err != nil {
			return
		}
		if back, err := decodeToken(encodeToken(m)); err != nil || back != m {
			t.Fatalf("round trip of %q: %q %v", m, back, err)
		}
	})
}

func TestURLEncoding(t *testing.T) {
	e := urlEncoder(true)
	for _, s := range []string{"a b", "a+b", "dir/é", "x%y", "tab\there", "&<>"} {
		enc := e.enc(s)
		dec, err := url.QueryUnescape(enc)
		if err != nil || dec != s {
			t.Fatalf("%q -> %q -> %q %v", s, enc, dec, err)
		}
		if strings.ContainsAny(enc, " +&<>") {
			t.Fatalf("%q not escaped: %q", s, enc)
		}
	}
	if urlEncoder(false).enc("a b") != "a b" {
		t.Fatal("encoding applied without encoding-type")
	}
}

func TestParseMaxKeys(t *testing.T) {
	cases := []struct {
		q    string
		want int
		err  bool
	}{
		{q: "", want: 1000}, {q: "max-keys=5", want: 5}, {q: "max-keys=0", want: 0},
		{q: "max-keys=5000", want: 1000}, {q: "max-keys=-1", err: true}, {q: "max-keys=x", err: true},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		got, err := parseMaxKeys(q, "max-keys", 1000, 1000)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("%q: got %d %v", c.q, got, err)
		}
	}
}
