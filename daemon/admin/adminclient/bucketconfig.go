package adminclient

import (
	"context"
	"net/http"

	"github.com/entrepot/entrepot/daemon/model"

	"github.com/entrepot/entrepot/daemon/admin"
)

// SetBucketWebsite publishes or unpublishes a bucket as a website.
func (c *Client) SetBucketWebsite(ctx context.Context, req admin.WebsiteRequest) (admin.BucketConfigInfo, error) {
	return doJSON[admin.BucketConfigInfo](ctx, c, http.MethodPost, "/v1/bucket/website", nil, req)
}

// SetBucketQuota sets a bucket's quotas.
func (c *Client) SetBucketQuota(ctx context.Context, req admin.QuotaRequest) (admin.BucketConfigInfo, error) {
	return doJSON[admin.BucketConfigInfo](ctx, c, http.MethodPost, "/v1/bucket/quota", nil, req)
}

// RunLifecycle applies every bucket's lifecycle rules now (or as of req.Now).
func (c *Client) RunLifecycle(ctx context.Context, req admin.LifecycleRunRequest) (model.LifecycleStats, error) {
	return doJSON[model.LifecycleStats](ctx, c, http.MethodPost, "/v1/lifecycle/run", nil, req)
}
