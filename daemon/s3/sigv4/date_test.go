package sigv4

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseDateHeader(t *testing.T) {
	want := time.Date(2026, 11, 27, 7, 7, 13, 0, time.UTC)
	cases := []struct {
		name, in string
		ok       bool
		want     time.Time
	}{
		{name: "rfc1123 GMT", in: "Fri, 27 Nov 2026 07:07:13 GMT", ok: true, want: want},
		{name: "rfc2822 -0000 (botocore)", in: "Fri, 27 Nov 2026 07:07:13 -0000", ok: true, want: want},
		{name: "rfc2822 +0000", in: "Fri, 27 Nov 2026 07:07:13 +0000", ok: true, want: want},
		{name: "rfc2822 +0100", in: "Fri, 27 Nov 2026 08:07:13 +0100", ok: true, want: want},
		{name: "rfc2822 one-digit day", in: "Fri, 7 Nov 2026 07:07:13 +0000", ok: true, want: want.AddDate(0, 0, -20)},
		{name: "rfc850", in: "Friday, 27-Nov-26 07:07:13 GMT", ok: true, want: want},
		{name: "ansi c", in: "Fri Nov 27 07:07:13 2026", ok: true, want: want},
		{name: "iso", in: "2026-11-27T07:07:13Z"},
		{name: "empty", in: ""},
		{name: "garbage", in: "yesterday"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseDateHeader(c.in)
			if ok != c.ok || (ok && !got.Equal(c.want)) {
				t.Fatalf("parseDateHeader(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzParseDateHeader(f *testing.F) {
	for _, s := range []string{"Fri, 27 Nov 2026 07:07:13 GMT", "Fri, 27 Nov 2026 07:07:13 -0000", "Fri Nov 27 07:07:13 2026", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, ok := parseDateHeader(s); !ok && !got.IsZero() {
			t.Fatalf("failed parse returned %v", got)
		}
	})
}

// A request signed the way botocore signs when the caller sets a Date
// header: Date (RFC 2822, -0000) signed, no X-Amz-Date; the string to sign
// carries the same instant in the ISO 8601 basic form.
func TestVerifyDateHeaderOnly(t *testing.T) {
	for _, date := range []string{"Fri, 24 May 2013 00:00:00 -0000", "Fri, 24 May 2013 00:00:00 GMT"} {
		t.Run(date, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
			r.Header.Set("Date", date)
			r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
			signed := []string{"date", "host", "x-amz-content-sha256"}
			scope := Scope(exampleTime, "us-east-1", "s3")
			key := SigningKey(exampleCreds.SecretAccessKey, exampleTime.Format(DateFormat), "us-east-1", "s3")
			sig := signatureHex(key, StringToSign(exampleTime, scope, CanonicalRequest(r, signed, EmptySHA256, false)))
			r.Header.Set("Authorization", Algorithm+" Credential="+exampleCreds.AccessKeyID+"/"+scope+
				", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
			if _, err := verifierAt(exampleTime.Add(time.Minute)).Verify(context.Background(), toServer(t, r)); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}
