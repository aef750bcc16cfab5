package model

import (
	"errors"
	"io"
	"time"

	"github.com/entrepot/entrepot/daemon/table"
)

// Sentinel errors. The S3 layer maps them to S3 error codes with errors.Is;
// the admin API maps them to HTTP statuses. Wrap them with %w, never replace them.
var (
	ErrNoSuchBucket            = errors.New("no such bucket")
	ErrBucketAlreadyExists     = errors.New("bucket already exists")       // owned by another key
	ErrBucketAlreadyOwnedByYou = errors.New("bucket already owned by you") // same key created it
	ErrBucketNotEmpty          = errors.New("bucket not empty")
	ErrInvalidBucketName       = errors.New("invalid bucket name")
	ErrNoSuchKey               = errors.New("no such object")
	ErrKeyTooLong              = errors.New("object key too long") // > 1024 bytes
	ErrNoSuchUpload            = errors.New("no such multipart upload")
	ErrInvalidPart             = errors.New("invalid part") // missing part or ETag mismatch
	ErrInvalidPartOrder        = errors.New("parts not in ascending order")
	ErrEntityTooSmall          = errors.New("part smaller than the 5 MiB minimum")
	ErrEntityTooLarge          = errors.New("entity too large")
	ErrPreconditionFailed      = errors.New("precondition failed") // If-Match / If-None-Match:* on write
	ErrNoSuchAccessKey         = errors.New("no such access key")
	ErrAccessKeyExists         = errors.New("access key already exists")
	ErrInvalidArgument         = errors.New("invalid argument")
	ErrBadDigest               = errors.New("bad digest") // returned by Body readers, passed through
	// ErrUnavailable: the cluster has no layout yet or a quorum of replicas
	// does not answer (S3: 503 ServiceUnavailable).
	ErrUnavailable = table.ErrUnavailable
)

// Perm is what one access key may do on one bucket.
type Perm struct {
	Read  bool `json:"read"`
	Write bool `json:"write"`
	Owner bool `json:"owner"`
}

// Key is an access key. Secret is only ever returned to the admin API caller that
// created or explicitly asked for it, and to the SigV4 verifier; never logged.
type Key struct {
	ID              string          `json:"access_key_id"`
	Secret          string          `json:"secret_access_key,omitempty"`
	Name            string          `json:"name"`
	CanCreateBucket bool            `json:"can_create_bucket"`
	Created         time.Time       `json:"created"`
	Perms           map[string]Perm `json:"permissions"` // bucket ID -> permission
}

// Bucket is a bucket. ID is an opaque, immutable, random identifier (hex);
// Name is the globally unique S3 name that resolves to it.
type Bucket struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner_key_id"` // key that created it ("" when created by the admin API)
	// Config is the bucket's website, CORS, lifecycle, quota and tag
	// configuration (see bucketconfig.go); nil = none.
	Config *BucketConfig `json:"cfg,omitempty"`
}

// BucketStats is what `entrepot bucket info` shows.
type BucketStats struct {
	Objects           int64 `json:"objects"`
	Bytes             int64 `json:"bytes"`
	UnfinishedUploads int64 `json:"unfinished_uploads"`
}

// Headers are the stored, standard content headers plus user metadata.
type Headers struct {
	ContentType        string            `json:"ct,omitempty"`
	ContentEncoding    string            `json:"ce,omitempty"`
	ContentDisposition string            `json:"cd,omitempty"`
	ContentLanguage    string            `json:"cl,omitempty"`
	CacheControl       string            `json:"cc,omitempty"`
	Expires            string            `json:"ex,omitempty"`
	UserMeta           map[string]string `json:"um,omitempty"` // x-amz-meta-<name> -> value, names lower-case without prefix
	// Tags, WebsiteRedirect and SSEC: see bucketconfig.go and sse.go.
	Tags            map[string]string `json:"tg,omitempty"`
	WebsiteRedirect string            `json:"wr,omitempty"`
	SSEC            *SSECInfo         `json:"sc,omitempty"`
}

// Sums are the digests the S3 layer computed while the body streamed through it.
type Sums struct {
	MD5       []byte            // raw 16-byte MD5 of the body (ETag source)
	Checksums map[string]string // "CRC32","CRC32C","SHA1","SHA256","CRC64NVME" -> base64 value
}

// ObjectMeta describes one live object version.
type ObjectMeta struct {
	Bucket       string            `json:"-"`
	Key          string            `json:"-"`
	VersionID    string            `json:"v"` // internal version id (unique, random)
	Size         int64             `json:"s"`
	ETag         string            `json:"e"` // without quotes: hex md5, or hex md5-of-md5s + "-N"
	LastModified time.Time         `json:"t"`
	Headers      Headers           `json:"h"`
	Checksums    map[string]string `json:"c,omitempty"`
	PartsCount   int               `json:"p,omitempty"` // multipart objects: number of parts
	// UploadID is the multipart upload that made the object ("" for a PUT or
	// copy); a CompleteMultipartUpload retried after success is answered from it.
	UploadID string `json:"mu,omitempty"`

	// found is the version record HeadObject read. Version contents never
	// change, so OpenObject of that version needs no second quorum read
	// (a GET costs one round trip to the replicas, not two).
	found *objVersion
}

// Conditions on a write (PutObject, CopyObject destination, CompleteMultipartUpload).
type WriteConditions struct {
	IfNoneMatchStar bool   // fail with ErrPreconditionFailed if the key exists
	IfNoneMatch     string // an ETag: fail with ErrPreconditionFailed if the current ETag equals it; "" = none
	// IfMatch fails with ErrPreconditionFailed unless the current ETag equals
	// it (unquoted), or with ErrNoSuchKey when the key does not exist, as S3
	// does; "*" matches any existing object; "" = none.
	IfMatch string
}

func (c WriteConditions) any() bool {
	return c.IfNoneMatchStar || c.IfNoneMatch != "" || c.IfMatch != ""
}

// PutInput is one PutObject.
type PutInput struct {
	Bucket, Key string
	Headers     Headers
	// Body is read to io.EOF. If it returns any other error (for example a
	// wrapped ErrBadDigest from the S3 layer's verifying reader), the put is
	// abandoned, nothing becomes visible, and the error is returned wrapped.
	Body io.Reader
	// Sums is called once, after Body returned io.EOF and before the object is committed.
	Sums func() Sums
	Cond WriteConditions
}

// CopyInput is one CopyObject: Src is the meta returned by HeadObject for the source.
type CopyInput struct {
	Src               ObjectMeta
	DstBucket, DstKey string
	Headers           *Headers // nil: copy the source's headers (MetadataDirective COPY)
	Cond              WriteConditions
}

// ListInput lists objects. Marker is exclusive (ListObjects v1 marker, v2
// StartAfter or the decoded continuation token, whichever is greater).
type ListInput struct {
	Bucket, Prefix, Delimiter, Marker string
	MaxKeys                           int // 0..1000; 0 returns nothing but IsTruncated is still correct
}

type ListResult struct {
	Objects        []ObjectMeta
	CommonPrefixes []string
	IsTruncated    bool
	NextMarker     string // last key or common prefix returned, when truncated
}

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket, Key       string
	UploadID          string
	Initiated         time.Time
	Headers           Headers
	ChecksumAlgorithm string // "" or e.g. "CRC32" when requested at create
}

type PartInput struct {
	Bucket, Key, UploadID string
	PartNumber            int // 1..10000
	Body                  io.Reader
	Sums                  func() Sums
}

type PartInfo struct {
	PartNumber   int
	ETag         string // unquoted hex md5
	Size         int64
	LastModified time.Time
	Checksums    map[string]string
}

type CompletedPart struct {
	PartNumber int
	ETag       string // unquoted
}

type ListPartsInput struct {
	Bucket, Key, UploadID string
	PartNumberMarker      int
	MaxParts              int
}

type ListPartsResult struct {
	Upload               Upload
	Parts                []PartInfo
	IsTruncated          bool
	NextPartNumberMarker int
}

type ListUploadsInput struct {
	Bucket, Prefix, Delimiter, KeyMarker, UploadIDMarker string
	MaxUploads                                           int
}

type ListUploadsResult struct {
	Uploads            []Upload
	CommonPrefixes     []string
	IsTruncated        bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

// NodeStatus is the single-node view `entrepot status` shows.
type NodeStatus struct {
	NodeID     string    `json:"node_id"`
	Hostname   string    `json:"hostname"`
	Zone       string    `json:"zone"`
	Capacity   int64     `json:"capacity_bytes"`
	DataDir    string    `json:"data_dir"`
	DataAvail  int64     `json:"data_avail_bytes"`
	DataTotal  int64     `json:"data_total_bytes"`
	Buckets    int64     `json:"buckets"`
	Objects    int64     `json:"objects"`
	Bytes      int64     `json:"bytes"`
	Blocks     int64     `json:"blocks"`
	BlockBytes int64     `json:"block_bytes_on_disk"`
	PendingGC  int64     `json:"blocks_pending_deletion"`
	Version    string    `json:"version"`
	Started    time.Time `json:"started"`
}
