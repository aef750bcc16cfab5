package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
)

// ErrNoEndpoint is returned by New when neither a socket nor a URL is given.
var ErrNoEndpoint = errors.New("no admin endpoint: give a unix socket path or a URL")

// Options says where the admin API is.
type Options struct {
	// Socket is the unix socket path. Used when URL is empty.
	Socket string
	// URL is the base URL of the TCP admin API, e.g. http://127.0.0.1:3903.
	URL string
	// Token is sent as "Authorization: Bearer <token>" when not empty.
	Token string
	// Timeout bounds each request; 0 = 30 s.
	Timeout time.Duration
}

// Client calls the admin API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client. It does not connect.
func New(opts Options) (*Client, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	switch {
	case opts.URL != "":
		u, err := url.Parse(opts.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("admin URL %q: must look like http://host:port", opts.URL)
		}
		return &Client{base: strings.TrimRight(opts.URL, "/"), token: opts.Token, http: &http.Client{Timeout: timeout}}, nil
	case opts.Socket != "":
		path := opts.Socket
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			MaxIdleConns: 2,
		}
		return &Client{base: "http://entrepot-admin", token: opts.Token, http: &http.Client{Transport: tr, Timeout: timeout}}, nil
	}
	return nil, ErrNoEndpoint
}

// Error is an error answer of the admin API.
type Error struct {
	Status  int    // HTTP status
	Code    string // e.g. "NoSuchBucket"
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("admin API: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Is matches the model sentinel the code stands for.
func (e *Error) Is(target error) bool {
	s := admin.ErrorForCode(e.Code)
	return s != nil && s == target
}

// doJSON is do for an endpoint whose answer is a T.
func doJSON[T any](ctx context.Context, c *Client, method, path string, query url.Values, in any) (T, error) {
	var out T
	err := c.do(ctx, method, path, query, in, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call admin API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read admin API answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e admin.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			e = admin.Error{Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode admin API answer: %w", err)
	}
	return nil
}

// Health returns nil when the node answers /health with 200.
func (c *Client) Health(ctx context.Context) error {
	var h admin.Health
	return c.do(ctx, http.MethodGet, "/health", nil, nil, &h)
}

// Metrics returns the Prometheus exposition text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("get metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	return string(b), nil
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (admin.Status, error) {
	return doJSON[admin.Status](ctx, c, http.MethodGet, "/v1/status", nil, nil)
}

// CreateKey creates a key; the answer includes its secret.
func (c *Client) CreateKey(ctx context.Context, req admin.KeyCreateRequest) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/create", nil, req)
}

// ImportKey imports an existing key id and secret.
func (c *Client) ImportKey(ctx context.Context, req admin.KeyImportRequest) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/import", nil, req)
}

// ListKeys lists keys (without secrets).
func (c *Client) ListKeys(ctx context.Context) ([]admin.KeyInfo, error) {
	var l admin.KeyList
	err := c.do(ctx, http.MethodGet, "/v1/key/list", nil, nil, &l)
	return l.Keys, err
}

// KeyInfo describes the key named by id or unique name; showSecret includes the secret.
func (c *Client) KeyInfo(ctx context.Context, key string, showSecret bool) (admin.KeyInfo, error) {
	q := url.Values{"key": {key}}
	if showSecret {
		q.Set("show_secret", "true")
	}
	return doJSON[admin.KeyInfo](ctx, c, http.MethodGet, "/v1/key/info", q, nil)
}

// DeleteKey deletes a key and returns what it was.
func (c *Client) DeleteKey(ctx context.Context, key string) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/delete", nil, admin.KeyRef{Key: key})
}

// SetKey changes a key's flags.
func (c *Client) SetKey(ctx context.Context, req admin.KeySetRequest) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/set", nil, req)
}

// Allow grants the flagged permissions.
func (c *Client) Allow(ctx context.Context, req admin.PermissionRequest) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/allow", nil, req)
}

// Deny revokes the flagged permissions.
func (c *Client) Deny(ctx context.Context, req admin.PermissionRequest) (admin.KeyInfo, error) {
	return doJSON[admin.KeyInfo](ctx, c, http.MethodPost, "/v1/key/deny", nil, req)
}

// CreateBucket creates a bucket, optionally owned by a key.
func (c *Client) CreateBucket(ctx context.Context, req admin.BucketCreateRequest) (admin.BucketInfo, error) {
	return doJSON[admin.BucketInfo](ctx, c, http.MethodPost, "/v1/bucket/create", nil, req)
}

// DeleteBucket deletes an empty bucket.
func (c *Client) DeleteBucket(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/bucket/delete", nil, admin.BucketRef{Bucket: name}, nil)
}

// ListBuckets lists buckets sorted by name.
func (c *Client) ListBuckets(ctx context.Context) ([]admin.BucketInfo, error) {
	var l admin.BucketList
	err := c.do(ctx, http.MethodGet, "/v1/bucket/list", nil, nil, &l)
	return l.Buckets, err
}

// BucketInfo describes a bucket with its stats and keys.
func (c *Client) BucketInfo(ctx context.Context, name string) (admin.BucketInfo, error) {
	return doJSON[admin.BucketInfo](ctx, c, http.MethodGet, "/v1/bucket/info", url.Values{"bucket": {name}}, nil)
}

// NodeID returns the node's ID and bootstrap addresses.
func (c *Client) NodeID(ctx context.Context) (admin.NodeIdentity, error) {
	return doJSON[admin.NodeIdentity](ctx, c, http.MethodGet, "/v1/node/id", nil, nil)
}

// RetireNode decommissions a member.
func (c *Client) RetireNode(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/node/retire", nil, admin.NodeRef{Node: id}, nil)
}

// ClusterStatus returns the cluster as this node sees it.
func (c *Client) ClusterStatus(ctx context.Context) (admin.ClusterStatus, error) {
	return doJSON[admin.ClusterStatus](ctx, c, http.MethodGet, "/v1/cluster/status", nil, nil)
}

// Layout returns the live layout versions.
func (c *Client) Layout(ctx context.Context) (admin.LayoutInfo, error) {
	return doJSON[admin.LayoutInfo](ctx, c, http.MethodGet, "/v1/layout", nil, nil)
}

// MerkleRoots returns the per-partition Merkle roots of a replicated table on this node.
func (c *Client) MerkleRoots(ctx context.Context, table string) (admin.MerkleRoots, error) {
	return doJSON[admin.MerkleRoots](ctx, c, http.MethodGet, "/v1/cluster/merkle", url.Values{"table": {table}}, nil)
}

// SyncTables runs one full anti-entropy round of the tables.
func (c *Client) SyncTables(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/sync", nil, nil, nil)
}

// Scrub verifies the node's blocks now.
func (c *Client) Scrub(ctx context.Context) (admin.ScrubResult, error) {
	return doJSON[admin.ScrubResult](ctx, c, http.MethodPost, "/v1/cluster/scrub", nil, nil)
}
