package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// BucketConfigStore is the optional part of Store that changes a bucket's
// website and quota settings (*model.Store implements it).
type BucketConfigStore interface {
	UpdateBucketConfig(ctx context.Context, name string, fn func(*model.BucketConfig) error) (model.Bucket, error)
	RunLifecycle(ctx context.Context, now time.Time) (model.LifecycleStats, error)
}

// LifecycleRunRequest runs the lifecycle rules now, or as of Now when set
// (RFC 3339; lets operators and tests see what a future pass will do).
type LifecycleRunRequest struct {
	Now string `json:"now,omitempty"`
}

var _ BucketConfigStore = (*model.Store)(nil)

// WebsiteRequest publishes (Allow) or unpublishes a bucket as a website.
// IndexDocument defaults to "index.html"; ErrorDocument is optional.
type WebsiteRequest struct {
	Bucket        string `json:"bucket"`
	Allow         bool   `json:"allow"`
	IndexDocument string `json:"index_document,omitempty"`
	ErrorDocument string `json:"error_document,omitempty"`
}

// QuotaRequest sets a bucket's quotas; a nil field keeps its value, 0 removes the limit.
type QuotaRequest struct {
	Bucket     string `json:"bucket"`
	MaxSize    *int64 `json:"max_size,omitempty"`
	MaxObjects *int64 `json:"max_objects,omitempty"`
}

// BucketConfigInfo is a bucket's website and quota settings.
type BucketConfigInfo struct {
	Bucket  string               `json:"bucket"`
	Website *model.WebsiteConfig `json:"website,omitempty"`
	Quota   model.Quota          `json:"quota"`
}

func (a *API) bucketConfigRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/bucket/website", handleJSON(a, a.bucketWebsite))
	mux.HandleFunc("POST /v1/bucket/quota", handleJSON(a, a.bucketQuota))
	mux.HandleFunc("POST /v1/lifecycle/run", handleJSON(a, a.lifecycleRun))
}

// configStore returns the store as a BucketConfigStore, or an error answered
// 501 NotImplemented with the message "this store has no " + what.
func (a *API) configStore(what string) (BucketConfigStore, error) {
	st, ok := a.cfg.Store.(BucketConfigStore)
	if !ok {
		return nil, messageError{msg: "this store has no " + what, err: ErrNotImplemented}
	}
	return st, nil
}

func (a *API) lifecycleRun(w http.ResponseWriter, r *http.Request, req *LifecycleRunRequest) (model.LifecycleStats, error) {
	now := time.Now()
	if req.Now != "" {
		t, err := time.Parse(time.RFC3339, req.Now)
		if err != nil {
			return model.LifecycleStats{}, fmt.Errorf("%w: now: %v", errInvalidRequest, err)
		}
		now = t
	}
	st, err := a.configStore("lifecycle")
	if err != nil {
		return model.LifecycleStats{}, err
	}
	stats, err := st.RunLifecycle(r.Context(), now)
	if err != nil {
		return model.LifecycleStats{}, fmt.Errorf("run lifecycle: %w", err)
	}
	return stats, nil
}

// updateBucketConfig applies fn to bucket's configuration once the request
// names a bucket, and returns the configuration it leaves.
func (a *API) updateBucketConfig(r *http.Request, bucket string, fn func(*model.BucketConfig) error) (BucketConfigInfo, error) {
	if err := required("bucket", bucket); err != nil {
		return BucketConfigInfo{}, err
	}
	st, err := a.configStore("bucket configuration")
	if err != nil {
		return BucketConfigInfo{}, err
	}
	b, err := st.UpdateBucketConfig(r.Context(), bucket, fn)
	if err != nil {
		return BucketConfigInfo{}, fmt.Errorf("update bucket: %w", err)
	}
	out := BucketConfigInfo{Bucket: b.Name}
	if b.Config != nil {
		out.Website, out.Quota = b.Config.Website, b.Config.Quota
	}
	return out, nil
}

func (a *API) bucketWebsite(w http.ResponseWriter, r *http.Request, req *WebsiteRequest) (BucketConfigInfo, error) {
	if req.IndexDocument == "" {
		req.IndexDocument = "index.html"
	}
	return a.updateBucketConfig(r, req.Bucket, func(c *model.BucketConfig) error {
		if !req.Allow {
			c.Website = nil
			return nil
		}
		c.Website = &model.WebsiteConfig{IndexSuffix: req.IndexDocument, ErrorDocument: req.ErrorDocument}
		return nil
	})
}

func (a *API) bucketQuota(w http.ResponseWriter, r *http.Request, req *QuotaRequest) (BucketConfigInfo, error) {
	if err := required("bucket", req.Bucket); err != nil {
		return BucketConfigInfo{}, err
	}
	if (req.MaxSize != nil && *req.MaxSize < 0) || (req.MaxObjects != nil && *req.MaxObjects < 0) {
		return BucketConfigInfo{}, fmt.Errorf("%w: quotas must not be negative", errInvalidRequest)
	}
	return a.updateBucketConfig(r, req.Bucket, func(c *model.BucketConfig) error {
		if req.MaxSize != nil {
			c.Quota.MaxSize = *req.MaxSize
		}
		if req.MaxObjects != nil {
			c.Quota.MaxObjects = *req.MaxObjects
		}
		return nil
	})
}
