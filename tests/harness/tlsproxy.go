package harness

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
)

// TLSProxy terminates TLS in front of a plain-HTTP S3 endpoint and forwards
// every request unchanged, Host header included, so SigV4 signatures made
// for the proxy's address verify at the node. It lets aws-sdk-go-v2 use its
// HTTPS-only upload path: aws-chunked bodies with trailing checksums
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
type TLSProxy struct {
	srv *httptest.Server
}

// NewTLSProxy starts a proxy for target (an http:// URL).
func NewTLSProxy(target string) (*TLSProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse proxy target: %w", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			r.Out.Header.Del("X-Forwarded-For")
		},
		FlushInterval: -1,
	}
	return &TLSProxy{srv: httptest.NewTLSServer(rp)}, nil
}

// URL returns the proxy's https:// endpoint.
func (p *TLSProxy) URL() string { return p.srv.URL }

// Client returns an HTTP client that trusts the proxy's certificate.
func (p *TLSProxy) Client() *http.Client { return p.srv.Client() }

// Close stops the proxy.
func (p *TLSProxy) Close() { p.srv.Close() }
