package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The example credentials and time of the AWS S3 SigV4 documentation.
var (
	exampleCreds = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	exampleTime  = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
)

func staticSecrets(creds ...Credentials) SecretFunc {
	m := make(map[string]string, len(creds))
	for _, c := range creds {
		m[c.AccessKeyID] = c.SecretAccessKey
	}
	return func(_ context.Context, id string) (string, error) {
		s, ok := m[id]
		if !ok {
			return "", fmt.Errorf("look up %q: %w", id, ErrUnknownAccessKey)
		}
		return s, nil
	}
}

func verifierAt(now time.Time) *Verifier {
	return &Verifier{
		Region: "us-east-1",
		Secret: staticSecrets(exampleCreds),
		Now:    func() time.Time { return now },
	}
}

// rawRequest parses an HTTP/1.1 request the way a server sees it. head is
// the request line and headers, one per line (LF separated, no final blank
// line); body is appended after the blank line.
func rawRequest(t testing.TB, head, body string) *http.Request {
	t.Helper()
	raw := strings.ReplaceAll(strings.TrimSpace(head), "\n", "\r\n") + "\r\n\r\n" + body
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse raw request: %v", err)
	}
	return r
}

// toServer serialises a client request and parses it back as a server would.
func toServer(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return sr
}

// readAllSmall reads r with reads of step bytes.
func readAllSmall(r io.Reader, step int) ([]byte, error) {
	var out []byte
	buf := make([]byte, step)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// errorIs is errors.Is that also treats want == nil as "no error".
func errorIs(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}
