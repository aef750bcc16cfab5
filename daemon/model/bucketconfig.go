package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/entrepot/entrepot/daemon/table"
)

// ErrQuotaExceeded: a write would take a bucket over its quota.
var ErrQuotaExceeded = errors.New("bucket quota exceeded")

// BucketConfig is the per-bucket configuration kept in the bucket record (a
// full-copy, last-writer-wins table entry, so every node sees it). Each
// field is independent; nil or empty means "not configured".
type BucketConfig struct {
	Website   *WebsiteConfig    `json:"web,omitempty"`
	CORS      []CORSRule        `json:"cors,omitempty"`
	Lifecycle []LifecycleRule   `json:"lc,omitempty"`
	Quota     Quota             `json:"q,omitzero"`
	Tags      map[string]string `json:"tags,omitempty"`
	// ObjectExtras is set once an object of the bucket was written with
	// SSE-C, tags or a website redirect: reads then take the S3 layer's
	// path that knows them.
	ObjectExtras bool `json:"x,omitempty"`
	// TS is when each field last changed: replicas merge the bucket record
	// field by field, so concurrent changes of different settings on two
	// nodes both survive.
	TS ConfigTimes `json:"ts,omitzero"`
}

// ConfigTimes are the per-field timestamps of a BucketConfig (table
// timestamps, ms).
type ConfigTimes struct {
	Website   uint64 `json:"web,omitempty"`
	CORS      uint64 `json:"cors,omitempty"`
	Lifecycle uint64 `json:"lc,omitempty"`
	Quota     uint64 `json:"q,omitempty"`
	Tags      uint64 `json:"tags,omitempty"`
	Extras    uint64 `json:"x,omitempty"`
}

// configField is one independently merged field of a BucketConfig.
type configField struct {
	ts   func(*BucketConfig) *uint64
	copy func(dst, src *BucketConfig)
	val  func(*BucketConfig) any
}

var configFields = [...]configField{
	{func(c *BucketConfig) *uint64 { return &c.TS.Website }, func(d, s *BucketConfig) { d.Website = s.Website }, func(c *BucketConfig) any { return c.Website }},
	{func(c *BucketConfig) *uint64 { return &c.TS.CORS }, func(d, s *BucketConfig) { d.CORS = s.CORS }, func(c *BucketConfig) any { return c.CORS }},
	{func(c *BucketConfig) *uint64 { return &c.TS.Lifecycle }, func(d, s *BucketConfig) { d.Lifecycle = s.Lifecycle }, func(c *BucketConfig) any { return c.Lifecycle }},
	{func(c *BucketConfig) *uint64 { return &c.TS.Quota }, func(d, s *BucketConfig) { d.Quota = s.Quota }, func(c *BucketConfig) any { return c.Quota }},
	{func(c *BucketConfig) *uint64 { return &c.TS.Tags }, func(d, s *BucketConfig) { d.Tags = s.Tags }, func(c *BucketConfig) any { return c.Tags }},
	{func(c *BucketConfig) *uint64 { return &c.TS.Extras }, func(d, s *BucketConfig) { d.ObjectExtras = s.ObjectExtras }, func(c *BucketConfig) any { return c.ObjectExtras }},
}

// mergeBucket merges two bucket registers: the newer record wins, then
// each configuration field takes the value with the newer field timestamp
// (ties: the greater JSON value), so the merge is commutative.
func mergeBucket(a, b lww[Bucket]) lww[Bucket] {
	out := mergeLWW(a, b)
	if out.Del || a.Del || b.Del {
		return out
	}
	other := a
	if sameJSON(out, a) {
		other = b
	}
	if other.V.Config == nil {
		return out
	}
	var cfg BucketConfig
	if out.V.Config != nil {
		cfg = *out.V.Config
	}
	changed := false
	for _, f := range configFields {
		mine, theirs := *f.ts(&cfg), *f.ts(other.V.Config)
		switch {
		case theirs > mine:
		case theirs == mine && theirs != 0:
			mj, _ := json.Marshal(f.val(&cfg))
			tj, _ := json.Marshal(f.val(other.V.Config))
			if bytes.Compare(tj, mj) <= 0 {
				continue
			}
		default:
			continue
		}
		f.copy(&cfg, other.V.Config)
		*f.ts(&cfg) = theirs
		changed = true
	}
	if changed {
		out.V.Config = &cfg
	}
	return out
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// WebsiteConfig is a bucket's static website configuration.
type WebsiteConfig struct {
	IndexSuffix   string `json:"index,omitempty"` // e.g. "index.html"
	ErrorDocument string `json:"error,omitempty"` // object key served with status 404 (or the rule's)
	// RedirectAll, when set, redirects every request (RedirectAllRequestsTo).
	RedirectAll  *Redirect     `json:"all,omitempty"`
	RoutingRules []RoutingRule `json:"rules,omitempty"`
}

// Redirect is where a website redirect goes.
type Redirect struct {
	HostName             string `json:"host,omitempty"`
	HTTPRedirectCode     string `json:"code,omitempty"`  // default "301"
	Protocol             string `json:"proto,omitempty"` // "http", "https" or "" (same as the request)
	ReplaceKeyPrefixWith string `json:"rprefix,omitempty"`
	ReplaceKeyWith       string `json:"rkey,omitempty"`
}

// RoutingRule is one website routing rule: a condition and a redirect.
type RoutingRule struct {
	KeyPrefixEquals             string   `json:"prefix,omitempty"`
	HTTPErrorCodeReturnedEquals string   `json:"errcode,omitempty"`
	Redirect                    Redirect `json:"redirect"`
}

// CORSRule is one CORS rule of a bucket.
type CORSRule struct {
	ID             string   `json:"id,omitempty"`
	AllowedOrigins []string `json:"origins"`
	AllowedMethods []string `json:"methods"`
	AllowedHeaders []string `json:"headers,omitempty"`
	ExposeHeaders  []string `json:"expose,omitempty"`
	MaxAgeSeconds  int      `json:"max_age,omitempty"`
}

// LifecycleRule is one lifecycle rule. Only Expiration and
// AbortIncompleteMultipartUpload actions exist here.
type LifecycleRule struct {
	ID      string `json:"id,omitempty"`
	Enabled bool   `json:"enabled"`
	Prefix  string `json:"prefix,omitempty"`
	// Size filters (bytes); 0 = none. An object matches when
	// size > SizeGreaterThan and (SizeLessThan == 0 or size < SizeLessThan).
	SizeGreaterThan int64 `json:"gt,omitempty"`
	SizeLessThan    int64 `json:"lt,omitempty"`
	// ExpirationDays (> 0) or ExpirationDate (midnight UTC) expire objects.
	ExpirationDays int       `json:"days,omitempty"`
	ExpirationDate time.Time `json:"date,omitzero"`
	// AbortIncompleteDays (> 0) aborts multipart uploads this many days old.
	AbortIncompleteDays int `json:"abort_days,omitempty"`
}

// Quota limits a bucket; 0 = unlimited.
type Quota struct {
	MaxSize    int64 `json:"max_size,omitempty"`
	MaxObjects int64 `json:"max_objects,omitempty"`
}

// UpdateBucketConfig reads the bucket's configuration, lets fn change it and
// writes it back (last writer wins across the cluster).
func (s *Store) UpdateBucketConfig(ctx context.Context, name string, fn func(*BucketConfig) error) (Bucket, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	b, err := s.bucketByName(ctx, name)
	if err != nil {
		return Bucket{}, err
	}
	cur, ok, err := s.buckets.Get(ctx, "", b.ID)
	if err != nil {
		return Bucket{}, fmt.Errorf("update bucket config: %w", err)
	}
	if !ok || cur.Del {
		return Bucket{}, fmt.Errorf("bucket %q: %w", name, ErrNoSuchBucket)
	}
	var cfg BucketConfig
	if cur.V.Config != nil {
		cfg = cloneConfig(*cur.V.Config)
	}
	before := cloneConfig(cfg)
	if err := fn(&cfg); err != nil {
		return Bucket{}, err
	}
	ts := table.NextTS(s.now(), cur.TS)
	for _, f := range configFields {
		if !sameJSON(f.val(&before), f.val(&cfg)) {
			*f.ts(&cfg) = ts
		}
	}
	nb := cur.V
	nb.Config = &cfg
	e := table.Entry[lww[Bucket]]{SK: b.ID, Value: lww[Bucket]{TS: ts, V: nb}}
	if _, err := s.buckets.Insert(ctx, e); err != nil {
		return Bucket{}, fmt.Errorf("update bucket config: %w", err)
	}
	return nb, nil
}

// cloneConfig deep-copies the slices and maps fn may change in place.
func cloneConfig(c BucketConfig) BucketConfig {
	out := c
	if c.Website != nil {
		w := *c.Website
		w.RoutingRules = append([]RoutingRule(nil), w.RoutingRules...)
		out.Website = &w
	}
	out.CORS = append([]CORSRule(nil), c.CORS...)
	out.Lifecycle = append([]LifecycleRule(nil), c.Lifecycle...)
	if c.Tags != nil {
		out.Tags = make(map[string]string, len(c.Tags))
		for k, v := range c.Tags {
			out.Tags[k] = v
		}
	}
	return out
}

// CheckQuota returns ErrQuotaExceeded when adding addObjects objects and
// addBytes bytes (either may be 0 or negative for a replacement) would take
// the bucket over its quota. Buckets without a quota cost nothing; with
// one, the bucket's entries are counted (a scan of its object partition).
func (s *Store) CheckQuota(ctx context.Context, b Bucket, addObjects, addBytes int64) error {
	if b.Config == nil || b.Config.Quota == (Quota{}) {
		return nil
	}
	q := b.Config.Quota
	st, err := s.bucketStats(ctx, b.ID)
	if err != nil {
		return err
	}
	if q.MaxObjects > 0 && addObjects > 0 && st.Objects+addObjects > q.MaxObjects {
		return fmt.Errorf("bucket %q has %d of %d objects: %w", b.Name, st.Objects, q.MaxObjects, ErrQuotaExceeded)
	}
	if q.MaxSize > 0 && addBytes > 0 && st.Bytes+addBytes > q.MaxSize {
		return fmt.Errorf("bucket %q has %d of %d bytes: %w", b.Name, st.Bytes, q.MaxSize, ErrQuotaExceeded)
	}
	return nil
}

// SetObjectTags replaces the tag set of an object. The object keeps its data
// (blocks are shared, nothing is copied) but gets a new internal version and
// Last-Modified time, since tables merge whole versions.
func (s *Store) SetObjectTags(ctx context.Context, bucket, key string, tags map[string]string) (ObjectMeta, error) {
	src, err := s.HeadObject(ctx, bucket, key)
	if err != nil {
		return ObjectMeta{}, err
	}
	h := src.Headers
	h.Tags = tags
	return s.CopyObject(ctx, CopyInput{Src: src, DstBucket: bucket, DstKey: key, Headers: &h, Cond: WriteConditions{IfMatch: src.ETag}})
}

// PartSize is the stored size of one part of an object.
type PartSize struct {
	Number int
	Size   int64
}

// PartSizes returns the stored size of each part of a multipart object in
// order, or one entry (number 0) for an object written by a single PUT.
func (s *Store) PartSizes(ctx context.Context, meta ObjectMeta) ([]PartSize, error) {
	if meta.PartsCount == 0 {
		return []PartSize{{Number: 0, Size: meta.Size}}, nil
	}
	bl, err := s.liveBlocks(ctx, meta.VersionID)
	if err != nil {
		return nil, fmt.Errorf("part sizes: %w", err)
	}
	var out []PartSize
	for _, e := range bl {
		if len(out) == 0 || out[len(out)-1].Number != int(e.Part) {
			out = append(out, PartSize{Number: int(e.Part)})
		}
		out[len(out)-1].Size = max(out[len(out)-1].Size, e.Off+e.Size)
	}
	var total int64
	for _, p := range out {
		total += p.Size
	}
	if total != meta.Size {
		return nil, fmt.Errorf("part sizes: blocks add up to %d, object has %d bytes: %w", total, meta.Size, ErrInvalidArgument)
	}
	return out, nil
}

// MatchCORS returns the first rule allowing origin and method, with every
// header of reqHeaders allowed (a preflight's Access-Control-Request-Headers).
func MatchCORS(rules []CORSRule, origin, method string, reqHeaders []string) (CORSRule, bool) {
	for _, r := range rules {
		if !anyWildcard(r.AllowedOrigins, origin, true) {
			continue
		}
		okMethod := false
		for _, m := range r.AllowedMethods {
			if strings.EqualFold(m, method) {
				okMethod = true
				break
			}
		}
		if !okMethod {
			continue
		}
		okHeaders := true
		for _, h := range reqHeaders {
			if h = strings.TrimSpace(h); h != "" && !anyWildcard(r.AllowedHeaders, strings.ToLower(h), false) {
				okHeaders = false
				break
			}
		}
		if okHeaders {
			return r, true
		}
	}
	return CORSRule{}, false
}

// anyWildcard reports whether s matches one of the patterns, each of which
// may contain one "*" wildcard (AWS allows at most one).
func anyWildcard(patterns []string, s string, caseSensitive bool) bool {
	for _, p := range patterns {
		if !caseSensitive {
			p = strings.ToLower(p)
		}
		if p == "*" || p == s {
			return true
		}
		if i := strings.IndexByte(p, '*'); i >= 0 {
			pre, suf := p[:i], p[i+1:]
			if len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf) {
				return true
			}
		}
	}
	return false
}

// WebsiteKey maps a website request path (already URL-decoded, starting
// with "/") to the object key to serve: a path ending in "/" gets the index
// suffix. It reports false for a path that cannot name an object.
func (w WebsiteConfig) WebsiteKey(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	key := p[1:]
	if key == "" || strings.HasSuffix(key, "/") {
		if w.IndexSuffix == "" {
			return "", false
		}
		key += w.IndexSuffix
	}
	return key, true
}
