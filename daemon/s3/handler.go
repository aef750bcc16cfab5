package s3

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/s3/sigv4"
	"github.com/prometheus/client_golang/prometheus"
)

// Backend is the storage the S3 API serves; *model.Store implements it.
// Methods and errors follow daemon/model/contract.txt.
type Backend interface {
	GetKey(ctx context.Context, accessKeyID string) (model.Key, error)

	CreateBucket(ctx context.Context, ownerKeyID, name string) (model.Bucket, error)
	DeleteBucket(ctx context.Context, name string) error
	GetBucket(ctx context.Context, name string) (model.Bucket, error)
	ListBuckets(ctx context.Context) ([]model.Bucket, error)

	HeadObject(ctx context.Context, bucket, key string) (model.ObjectMeta, error)
	OpenObject(ctx context.Context, meta model.ObjectMeta, offset, length int64) (io.ReadCloser, error)
	PutObject(ctx context.Context, in model.PutInput) (model.ObjectMeta, error)
	CopyObject(ctx context.Context, in model.CopyInput) (model.ObjectMeta, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	ListObjects(ctx context.Context, in model.ListInput) (model.ListResult, error)

	CreateMultipartUpload(ctx context.Context, bucket, key string, h model.Headers, checksumAlgo string) (model.Upload, error)
	UploadPart(ctx context.Context, in model.PartInput) (model.PartInfo, error)
	UploadPartCopy(ctx context.Context, bucket, key, uploadID string, partNumber int, src model.ObjectMeta, offset, length int64) (model.PartInfo, error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []model.CompletedPart, cond model.WriteConditions) (model.ObjectMeta, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
	ListParts(ctx context.Context, in model.ListPartsInput) (model.ListPartsResult, error)
	ListMultipartUploads(ctx context.Context, in model.ListUploadsInput) (model.ListUploadsResult, error)
}

// Config configures NewHandler.
type Config struct {
	// Backend is the storage; required.
	Backend Backend
	// Region is the S3 region this endpoint serves and verifies signatures
	// for; default "us-east-1".
	Region string
	// RootDomain enables virtual-host style requests ("<bucket>.<RootDomain>");
	// "" = path style only.
	RootDomain string
	// Logger receives one line per request (debug; info for 5xx); nil = discard.
	Logger *slog.Logger
	// Registerer registers the metrics entrepot_s3_requests_total{op,code},
	// entrepot_s3_errors_total and entrepot_s3_request_duration_seconds{op};
	// nil = no metrics.
	Registerer prometheus.Registerer
	// Now is the clock for signature checks; nil = time.Now.
	Now func() time.Time
}

// Size limits S3 imposes.
const (
	maxPutSize  = 5 << 30 // single PUT and single part
	maxCopySize = 5 << 30 // CopyObject / UploadPartCopy source or range
	maxUserMeta = 2 << 10 // user metadata, names plus values
)

type handler struct {
	be       Backend
	region   string
	root     string
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics
	hashes   *hashes
	idPrefix string
	hostID   string
	seq      atomic.Uint64
	quotas   quotaCache // extra_handler.go
}

// NewHandler returns the S3 API handler.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Backend == nil {
		return nil, errors.New("new s3 handler: Backend is required")
	}
	root := strings.ToLower(strings.Trim(cfg.RootDomain, "."))
	if strings.ContainsAny(root, ":/ ") {
		return nil, fmt.Errorf("new s3 handler: RootDomain %q must be a bare host name (no scheme, port or path)", cfg.RootDomain)
	}
	h := &handler{be: cfg.Backend, region: cfg.Region, root: root, log: cfg.Logger, now: cfg.Now, hashes: newHashes()}
	if h.region == "" {
		h.region = "us-east-1"
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "s3")
	if h.now == nil {
		h.now = time.Now
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("new s3 handler: request id seed: %w", err)
	}
	h.idPrefix = strings.ToUpper(hex.EncodeToString(rnd[:4]))
	h.hostID = base64.StdEncoding.EncodeToString(rnd[4:])
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer)
		if err != nil {
			return nil, fmt.Errorf("new s3 handler: %w", err)
		}
		h.metrics = m
	}
	return h, nil
}

// request is the per-request state handlers share.
type request struct {
	id        string
	ep        Endpoint
	key       model.Key
	presigned bool
	auth      *sigv4.Result
	bucket    *model.Bucket // the endpoint's bucket once resolved (extra_handler.go: requestBucket)
}

// errResponseStarted is returned by a handler that failed after it started
// writing the body; nothing more can be sent.
var errResponseStarted = errors.New("response already started")

func (h *handler) newRequestID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.seq.Add(1))
	return h.idPrefix + strings.ToUpper(hex.EncodeToString(b[2:]))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	rq := &request{id: h.newRequestID()}
	hdr := w.Header()
	hdr.Set("X-Amz-Request-Id", rq.id)
	hdr.Set("X-Amz-Id-2", h.hostID)
	hdr.Set("Server", "entrepot")

	ep, err := ParseEndpoint(r, h.root)
	rq.ep = ep
	if err == nil && r.Header.Get("Origin") != "" {
		h.setCORSHeaders(r.Context(), sw, r, rq) // cors.go
	}
	if err == nil && ep.Op != OpOptions && ep.Op != OpPostObject { // both authenticate themselves (cors.go, post.go)
		err = h.authenticate(r, rq)
	}
	if err == nil {
		err = h.dispatch(sw, r, rq)
	}
	var code ErrorCode
	if err != nil {
		code = h.writeError(sw, r, rq, err)
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	op := ep.Op
	if op == "" {
		op = OpUnknown
	}
	dur := time.Since(start)
	if h.metrics != nil {
		h.metrics.observe(op, status, code, dur)
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelInfo
	}
	if h.log.Enabled(r.Context(), level) {
		attrs := []slog.Attr{
			slog.String("request_id", rq.id), slog.String("op", string(op)),
			slog.String("method", r.Method), slog.String("bucket", ep.Bucket),
			slog.Int("status", status), slog.Int64("bytes_out", sw.bytes),
			slog.Int64("bytes_in", max(r.ContentLength, 0)), slog.Duration("duration", dur),
		}
		if rq.key.ID != "" {
			attrs = append(attrs, slog.String("access_key", rq.key.ID))
		}
		if err != nil {
			attrs = append(attrs, slog.String("code", string(code)), slog.String("error", err.Error()))
		}
		h.log.LogAttrs(r.Context(), level, "s3 request", attrs...)
	}
}

// authenticate verifies the request signature and loads the access key.
func (h *handler) authenticate(r *http.Request, rq *request) error {
	rq.presigned = r.URL.RawQuery != "" && sigv4.IsPresigned(r.URL.Query())
	var key model.Key
	v := sigv4.Verifier{
		Region: h.region,
		Now:    h.now,
		Secret: func(ctx context.Context, id string) (string, error) {
			k, err := h.be.GetKey(ctx, id)
			if errors.Is(err, model.ErrNoSuchAccessKey) {
				return "", fmt.Errorf("get key: %w", sigv4.ErrUnknownAccessKey)
			}
			if err != nil {
				return "", fmt.Errorf("get key: %w", err)
			}
			key = k
			return k.Secret, nil
		},
	}
	res, err := v.Verify(r.Context(), r)
	if err != nil {
		return fmt.Errorf("verify signature: %w", err)
	}
	if key.ID == "" || key.ID != res.AccessKeyID {
		return apiErr(CodeAccessDenied, "")
	}
	key.Secret = ""
	rq.key = key
	rq.auth = res
	if res.Body != nil {
		r.Body = res.Body
	}
	return nil
}

type perm int

const (
	permRead perm = iota
	permWrite
	permOwner
	permAny
)

// bucketFor resolves the endpoint's bucket and checks the key's permission on it.
func (h *handler) bucketFor(ctx context.Context, rq *request, name string, need perm) (model.Bucket, error) {
	b, err := h.requestBucket(ctx, rq, name)
	if err != nil {
		return b, fmt.Errorf("get bucket %q: %w", name, err)
	}
	p := rq.key.Perms[b.ID]
	ok := false
	switch need {
	case permRead:
		ok = p.Read
	case permWrite:
		ok = p.Write
	case permOwner:
		ok = p.Owner
	case permAny:
		ok = p.Read || p.Write || p.Owner
	}
	if !ok {
		return b, apiErr(CodeAccessDenied, "")
	}
	return b, nil
}

// sseHeaders request server-side encryption, which is not implemented;
// ignoring them would store plaintext the client believes is encrypted.
var sseHeaders = [...]string{
	"X-Amz-Server-Side-Encryption",
}

func (h *handler) dispatch(w http.ResponseWriter, r *http.Request, rq *request) error {
	for _, name := range sseHeaders {
		if r.Header.Get(name) != "" {
			return apiErr(CodeNotImplemented, "Server-side encryption is not implemented.")
		}
	}
	if done, err := h.dispatchExtra(w, r, rq); done { // extra_handler.go
		return err
	}
	switch rq.ep.Op {
	case OpListBuckets:
		return h.listBuckets(w, r, rq)
	case OpCreateBucket:
		return h.createBucket(w, r, rq)
	case OpDeleteBucket:
		return h.deleteBucket(w, r, rq)
	case OpHeadBucket:
		return h.headBucket(w, r, rq)
	case OpGetBucketLocation:
		return h.getBucketLocation(w, r, rq)
	case OpGetBucketVersioning:
		return h.getBucketVersioning(w, r, rq)
	case OpListObjects:
		return h.listObjects(w, r, rq)
	case OpListObjectsV2:
		return h.listObjectsV2(w, r, rq)
	case OpListMultipartUploads:
		return h.listMultipartUploads(w, r, rq)
	case OpDeleteObjects:
		return h.deleteObjects(w, r, rq)
	case OpPutObject:
		return h.putObject(w, r, rq)
	case OpCopyObject:
		return h.copyObject(w, r, rq)
	case OpGetObject, OpHeadObject:
		return h.getObject(w, r, rq)
	case OpDeleteObject:
		return h.deleteObject(w, r, rq)
	case OpCreateMultipartUpload:
		return h.createMultipartUpload(w, r, rq)
	case OpUploadPart:
		return h.uploadPart(w, r, rq)
	case OpUploadPartCopy:
		return h.uploadPartCopy(w, r, rq)
	case OpCompleteMultipartUpload:
		return h.completeMultipartUpload(w, r, rq)
	case OpAbortMultipartUpload:
		return h.abortMultipartUpload(w, r, rq)
	case OpListParts:
		return h.listParts(w, r, rq)
	}
	return fmt.Errorf("operation %q: %w", rq.ep.Op, ErrNotImplemented)
}

// writeError answers err as an S3 error and returns its code.
func (h *handler) writeError(w *statusWriter, r *http.Request, rq *request, err error) ErrorCode {
	ae := toAPIError(err, rq.presigned)
	if errors.Is(err, errResponseStarted) || w.status != 0 {
		return ae.Code
	}
	status := ae.Status()
	hdr := w.Header()
	hdr.Del("Content-Length")
	if r.Method == http.MethodHead || status == http.StatusNotModified {
		w.WriteHeader(status)
		return ae.Code
	}
	body := errorBody{
		Code:      string(ae.Code),
		Message:   ae.message(),
		Resource:  r.URL.Path,
		RequestID: rq.id,
		HostID:    h.hostID,
	}
	switch ae.Code {
	case CodeNoSuchKey:
		body.Key = rq.ep.Key
	case CodeNoSuchBucket, CodeBucketAlreadyExists, CodeBucketAlreadyOwnedByYou, CodeBucketNotEmpty:
		body.BucketName = rq.ep.Bucket
	}
	writeXMLStatus(w, status, body)
	return ae.Code
}

// writeXML answers 200 with an XML document.
func writeXML(w http.ResponseWriter, v any) error {
	writeXMLStatus(w, http.StatusOK, v)
	return nil
}

func writeXMLStatus(w http.ResponseWriter, status int, v any) {
	var buf strings.Builder
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		// Only programming errors (unsupported types) can get here.
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/xml")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, buf.String())
}

// statusWriter records the status and byte count of a response. It keeps
// io.ReaderFrom so that io.Copy from an *os.File-backed reader still
// reaches sendfile in net/http.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{s.ResponseWriter}, src)
	}
	s.bytes += n
	return n, err
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// metrics are the S3 request metrics.
type metrics struct {
	requests *prometheus.CounterVec
	errors   prometheus.Counter
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_s3_requests_total",
			Help: "S3 API requests by operation and response code (HTTP status, or S3 error code).",
		}, []string{"op", "code"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entrepot_s3_errors_total",
			Help: "S3 API requests answered with an S3 error.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "entrepot_s3_request_duration_seconds",
			Help:    "S3 API request duration by operation, until the response is fully written.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register s3 metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(op Op, status int, code ErrorCode, d time.Duration) {
	label := strconv.Itoa(status)
	if code != "" && code != CodeNotModified {
		label = string(code)
		m.errors.Inc()
	}
	m.requests.WithLabelValues(string(op), label).Inc()
	m.duration.WithLabelValues(string(op)).Observe(d.Seconds())
}
