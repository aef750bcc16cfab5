package admin

import (
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// KeyCreateRequest creates an access key with a random id and secret.
type KeyCreateRequest struct {
	Name            string `json:"name"`
	CanCreateBucket bool   `json:"can_create_bucket,omitempty"`
}

// KeyImportRequest imports an existing access key id and secret.
type KeyImportRequest struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Name            string `json:"name"`
	CanCreateBucket bool   `json:"can_create_bucket,omitempty"`
}

// KeyRef names a key by id or unique name.
type KeyRef struct {
	Key string `json:"key"`
}

// KeySetRequest changes a key's flags; nil fields are left alone.
type KeySetRequest struct {
	Key             string `json:"key"`
	CanCreateBucket *bool  `json:"can_create_bucket,omitempty"`
}

// PermissionRequest adds (allow) or removes (deny) the flagged permissions of
// Key on Bucket; flags left false are unchanged.
type PermissionRequest struct {
	Key    string `json:"key"`
	Bucket string `json:"bucket"`
	Read   bool   `json:"read,omitempty"`
	Write  bool   `json:"write,omitempty"`
	Owner  bool   `json:"owner,omitempty"`
}

// KeyBucket is one bucket a key has permissions on.
type KeyBucket struct {
	BucketID string `json:"bucket_id"`
	Bucket   string `json:"bucket"` // name; "" if the bucket no longer exists
	model.Perm
}

// KeyInfo describes an access key. SecretAccessKey is set only on create and
// on info with show_secret.
type KeyInfo struct {
	AccessKeyID     string      `json:"access_key_id"`
	SecretAccessKey string      `json:"secret_access_key,omitempty"`
	Name            string      `json:"name"`
	CanCreateBucket bool        `json:"can_create_bucket"`
	Created         time.Time   `json:"created"`
	Buckets         []KeyBucket `json:"buckets"`
}

// KeyList is the answer of /v1/key/list.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

// BucketCreateRequest creates a bucket; Owner (optional key reference) gets read, write and owner.
type BucketCreateRequest struct {
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
}

// BucketRef names a bucket.
type BucketRef struct {
	Bucket string `json:"bucket"`
}

// BucketKey is one key's permissions on a bucket.
type BucketKey struct {
	AccessKeyID string `json:"access_key_id"`
	Name        string `json:"name"`
	model.Perm
}

// BucketInfo describes a bucket. Stats and Keys are filled by /v1/bucket/info only.
type BucketInfo struct {
	ID      string             `json:"id"`
	Name    string             `json:"name"`
	Created time.Time          `json:"created"`
	Owner   string             `json:"owner_key_id,omitempty"`
	Stats   *model.BucketStats `json:"stats,omitempty"`
	Keys    []BucketKey        `json:"keys,omitempty"`
}

// BucketList is the answer of /v1/bucket/list.
type BucketList struct {
	Buckets []BucketInfo `json:"buckets"`
}

// Status is the answer of /v1/status.
type Status struct {
	Healthy    bool             `json:"healthy"`
	S3Endpoint string           `json:"s3_endpoint,omitempty"`
	Region     string           `json:"region,omitempty"`
	Node       model.NodeStatus `json:"node"`
}

// Health is the answer of /health.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
}

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes that are not derived from model sentinels.
const (
	CodeInvalidRequest = "InvalidRequest"
	CodeUnauthorized   = "Unauthorized"
	CodeForbidden      = "Forbidden"
	CodeNoSuchEndpoint = "NoSuchEndpoint"
	CodeAmbiguousKey   = "AmbiguousKey"
	CodeInternal       = "InternalError"
)
