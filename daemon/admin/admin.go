package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

// Store is what the admin API needs from the storage layer (*model.Store).
type Store interface {
	GetKey(ctx context.Context, accessKeyID string) (model.Key, error)
	CreateKey(ctx context.Context, name string) (model.Key, error)
	ImportKey(ctx context.Context, id, secret, name string) (model.Key, error)
	ListKeys(ctx context.Context) ([]model.Key, error)
	DeleteKey(ctx context.Context, accessKeyID string) error
	SetKeyCanCreateBucket(ctx context.Context, accessKeyID string, allow bool) error
	SetPermission(ctx context.Context, accessKeyID, bucketName string, p model.Perm) error
	CreateBucket(ctx context.Context, ownerKeyID, name string) (model.Bucket, error)
	DeleteBucket(ctx context.Context, name string) error
	GetBucket(ctx context.Context, name string) (model.Bucket, error)
	ListBuckets(ctx context.Context) ([]model.Bucket, error)
	BucketStats(ctx context.Context, name string) (model.BucketStats, error)
	Status(ctx context.Context) (model.NodeStatus, error)
}

// Config configures the API.
type Config struct {
	// Store is the storage layer. Required.
	Store Store
	// Token is the bearer token required on TCP; "" = TCP serves only /health and /metrics.
	Token string
	// MetricsToken, when set, is required on /metrics over TCP (the admin token is accepted too);
	// when only Token is set, /metrics needs it; with neither, /metrics is open.
	MetricsToken string
	// Metrics serves /metrics; nil = 404.
	Metrics http.Handler
	// Healthy reports whether the node serves requests; nil = always.
	Healthy func() bool
	// Cluster serves the cluster endpoints (/v1/node/*, /v1/cluster/*, /v1/layout);
	// nil = they answer 409 NotClustered.
	Cluster Cluster
	// S3Endpoint and Region are shown by /v1/status. Optional.
	S3Endpoint, Region string
	// Logger; nil = discard.
	Logger *slog.Logger
}

// API is the admin API. It is safe for concurrent use.
type API struct {
	cfg    Config
	log    *slog.Logger
	local  http.Handler
	remote http.Handler
}

// New builds the API.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil {
		return nil, errors.New("admin: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Healthy == nil {
		cfg.Healthy = func() bool { return true }
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "admin")}
	mux := a.routes()
	a.local = mux
	a.remote = a.authenticate(mux)
	return a, nil
}

// LocalHandler serves the unix socket: the socket's file mode is the authentication.
func (a *API) LocalHandler() http.Handler { return a.local }

// RemoteHandler serves TCP: bearer tokens are required as described in the package doc.
func (a *API) RemoteHandler() http.Handler { return a.remote }

func (a *API) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.health)
	mux.HandleFunc("HEAD /health", a.health)
	mux.HandleFunc("GET /metrics", a.metrics)
	mux.HandleFunc("GET /v1/status", handle(a, a.status))
	mux.HandleFunc("POST /v1/key/create", handleJSON(a, a.keyCreate))
	mux.HandleFunc("POST /v1/key/import", handleJSON(a, a.keyImport))
	mux.HandleFunc("GET /v1/key/list", handle(a, a.keyList))
	mux.HandleFunc("GET /v1/key/info", handle(a, a.keyInfo))
	mux.HandleFunc("POST /v1/key/delete", handleJSON(a, a.keyDelete))
	mux.HandleFunc("POST /v1/key/set", handleJSON(a, a.keySet))
	mux.HandleFunc("POST /v1/bucket/create", handleJSON(a, a.bucketCreate))
	mux.HandleFunc("POST /v1/bucket/delete", handleJSON(a, a.bucketDelete))
	mux.HandleFunc("GET /v1/bucket/list", handle(a, a.bucketList))
	mux.HandleFunc("GET /v1/bucket/info", handle(a, a.bucketInfo))
	for _, kind := range []string{"key", "bucket"} { // /v1/key/allow and /v1/bucket/allow are one endpoint
		mux.HandleFunc("POST /v1/"+kind+"/allow", handleJSON(a, a.allow(true)))
		mux.HandleFunc("POST /v1/"+kind+"/deny", handleJSON(a, a.allow(false)))
	}
	a.clusterRoutes(mux)
	a.bucketConfigRoutes(mux) // bucketconfig.go
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, http.StatusNotFound, CodeNoSuchEndpoint, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// tokenEqual compares in constant time (hashing first hides the length).
func tokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			next.ServeHTTP(w, r)
			return
		case "/metrics":
			// Metrics token if set, else the admin token if set, else open.
			if a.cfg.MetricsToken == "" && a.cfg.Token == "" {
				next.ServeHTTP(w, r)
				return
			}
			tok, ok := bearer(r)
			if ok && (tokenEqual(tok, a.cfg.MetricsToken) || tokenEqual(tok, a.cfg.Token)) {
				next.ServeHTTP(w, r)
				return
			}
			a.unauthorized(w, r, "metrics token (or admin token) required")
			return
		}
		if a.cfg.Token == "" {
			a.writeError(w, r, http.StatusForbidden, CodeForbidden,
				"no admin token configured: over TCP only /health and /metrics are served; use the unix socket or set admin.token_file")
			return
		}
		tok, ok := bearer(r)
		if !ok || !tokenEqual(tok, a.cfg.Token) {
			a.unauthorized(w, r, "admin token required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="entrepot"`)
	a.writeError(w, r, http.StatusUnauthorized, CodeUnauthorized, msg)
}

func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	a.writeJSON(w, status, Error{Code: code, Message: msg})
}

// fail answers with the error's code; internal errors are logged, not shown.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := codeFor(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		a.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(w), "err", err)
		msg = "internal error (request id " + requestID(w) + ")"
	}
	a.writeError(w, r, status, code, msg)
}

// decode reads a strict JSON body into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", errInvalidRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: body: trailing data after the JSON object", errInvalidRequest)
	}
	return nil
}

// handle adapts an endpoint without a request body: fn's result is the 200
// answer, its error is answered by fail.
func handle[Resp any](a *API, fn func(http.ResponseWriter, *http.Request) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(w, r)
		a.reply(w, r, v, err)
	}
}

// handleJSON adapts an endpoint with a JSON request body: the body is decoded
// strictly (a bad body is answered by fail before fn runs), then as handle.
func handleJSON[Req, Resp any](a *API, fn func(http.ResponseWriter, *http.Request, *Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decode(w, r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
		v, err := fn(w, r, &req)
		a.reply(w, r, v, err)
	}
}

// reply writes an endpoint's outcome: v with 200, or err through fail.
func (a *API) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeJSON(w, http.StatusOK, v)
}

// requestID is the request's id, set on the response by the daemon's middleware.
func requestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%w: %s is required", errInvalidRequest, field)
	}
	return nil
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Healthy() {
		a.writeJSON(w, http.StatusOK, Health{Status: "ok"})
		return
	}
	a.writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable"})
}

func (a *API) metrics(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Metrics == nil {
		a.writeError(w, r, http.StatusNotFound, CodeNoSuchEndpoint, "metrics are not enabled")
		return
	}
	a.cfg.Metrics.ServeHTTP(w, r)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) (Status, error) {
	st, err := a.cfg.Store.Status(r.Context())
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return Status{Healthy: a.cfg.Healthy(), S3Endpoint: a.cfg.S3Endpoint, Region: a.cfg.Region, Node: st}, nil
}

// resolveKey finds a key by id, then by unique name. The result includes the secret.
func (a *API) resolveKey(ctx context.Context, ref string) (model.Key, error) {
	if err := required("key", ref); err != nil {
		return model.Key{}, err
	}
	k, err := a.cfg.Store.GetKey(ctx, ref)
	if err == nil || !errors.Is(err, model.ErrNoSuchAccessKey) {
		return k, err
	}
	keys, lerr := a.cfg.Store.ListKeys(ctx)
	if lerr != nil {
		return model.Key{}, fmt.Errorf("list keys: %w", lerr)
	}
	var match []model.Key
	for _, k := range keys {
		if k.Name == ref {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return model.Key{}, fmt.Errorf("key %q: %w", ref, model.ErrNoSuchAccessKey)
	case 1:
		return a.cfg.Store.GetKey(ctx, match[0].ID)
	default:
		return model.Key{}, fmt.Errorf("key %q: %w", ref, ErrAmbiguousKey)
	}
}

// bucketNames maps bucket ids to names.
func (a *API) bucketNames(ctx context.Context) (map[string]string, error) {
	bs, err := a.cfg.Store.ListBuckets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	m := make(map[string]string, len(bs))
	for _, b := range bs {
		m[b.ID] = b.Name
	}
	return m, nil
}

func keyInfo(k model.Key, names map[string]string, withSecret bool) KeyInfo {
	ki := KeyInfo{AccessKeyID: k.ID, Name: k.Name, CanCreateBucket: k.CanCreateBucket, Created: k.Created, Buckets: []KeyBucket{}}
	if withSecret {
		ki.SecretAccessKey = k.Secret
	}
	for id, p := range k.Perms {
		if !p.Read && !p.Write && !p.Owner {
			continue
		}
		ki.Buckets = append(ki.Buckets, KeyBucket{BucketID: id, Bucket: names[id], Perm: p})
	}
	sort.Slice(ki.Buckets, func(i, j int) bool {
		if ki.Buckets[i].Bucket != ki.Buckets[j].Bucket {
			return ki.Buckets[i].Bucket < ki.Buckets[j].Bucket
		}
		return ki.Buckets[i].BucketID < ki.Buckets[j].BucketID
	})
	return ki
}

// describeKey re-reads a key and renders it.
func (a *API) describeKey(ctx context.Context, id string, withSecret bool) (KeyInfo, error) {
	k, err := a.cfg.Store.GetKey(ctx, id)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("get key: %w", err)
	}
	names, err := a.bucketNames(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	return keyInfo(k, names, withSecret), nil
}

func (a *API) keyCreate(w http.ResponseWriter, r *http.Request, req *KeyCreateRequest) (KeyInfo, error) {
	k, err := a.cfg.Store.CreateKey(r.Context(), req.Name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("create key: %w", err)
	}
	return a.finishNewKey(w, r, k, req.CanCreateBucket, true, "access key created")
}

func (a *API) keyImport(w http.ResponseWriter, r *http.Request, req *KeyImportRequest) (KeyInfo, error) {
	if err := required("access_key_id", req.AccessKeyID); err != nil {
		return KeyInfo{}, err
	}
	if err := required("secret_access_key", req.SecretAccessKey); err != nil {
		return KeyInfo{}, err
	}
	k, err := a.cfg.Store.ImportKey(r.Context(), req.AccessKeyID, req.SecretAccessKey, req.Name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("import key: %w", err)
	}
	return a.finishNewKey(w, r, k, req.CanCreateBucket, false, "access key imported")
}

// finishNewKey applies the can-create-bucket flag of a created or imported
// key, logs the event (never the secret) and returns the key's details,
// with its secret only when showSecret (a created key's secret is shown once).
func (a *API) finishNewKey(w http.ResponseWriter, r *http.Request, k model.Key, canCreateBucket, showSecret bool, event string) (KeyInfo, error) {
	ctx := r.Context()
	if canCreateBucket {
		if err := a.cfg.Store.SetKeyCanCreateBucket(ctx, k.ID, true); err != nil {
			return KeyInfo{}, fmt.Errorf("set can_create_bucket: %w", err)
		}
	}
	ki, err := a.describeKey(ctx, k.ID, showSecret)
	if err != nil {
		return KeyInfo{}, err
	}
	a.log.InfoContext(ctx, event, "access_key_id", k.ID, "name", k.Name, "request_id", requestID(w))
	return ki, nil
}

func (a *API) keyList(w http.ResponseWriter, r *http.Request) (KeyList, error) {
	ctx := r.Context()
	keys, err := a.cfg.Store.ListKeys(ctx)
	if err != nil {
		return KeyList{}, fmt.Errorf("list keys: %w", err)
	}
	names, err := a.bucketNames(ctx)
	if err != nil {
		return KeyList{}, err
	}
	out := KeyList{Keys: make([]KeyInfo, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyInfo(k, names, false))
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		if out.Keys[i].Name != out.Keys[j].Name {
			return out.Keys[i].Name < out.Keys[j].Name
		}
		return out.Keys[i].AccessKeyID < out.Keys[j].AccessKeyID
	})
	return out, nil
}

// resolveKeyInfo resolves a key reference and renders the key as it is now
// (the secret only when withSecret).
func (a *API) resolveKeyInfo(ctx context.Context, ref string, withSecret bool) (model.Key, KeyInfo, error) {
	k, err := a.resolveKey(ctx, ref)
	if err != nil {
		return model.Key{}, KeyInfo{}, err
	}
	names, err := a.bucketNames(ctx)
	if err != nil {
		return model.Key{}, KeyInfo{}, err
	}
	return k, keyInfo(k, names, withSecret), nil
}

func (a *API) keyInfo(w http.ResponseWriter, r *http.Request) (KeyInfo, error) {
	q := r.URL.Query()
	show := false
	if s := q.Get("show_secret"); s != "" {
		var err error
		if show, err = strconv.ParseBool(s); err != nil {
			return KeyInfo{}, fmt.Errorf("%w: show_secret=%q is not a boolean", errInvalidRequest, s)
		}
	}
	_, ki, err := a.resolveKeyInfo(r.Context(), q.Get("key"), show)
	return ki, err
}

func (a *API) keyDelete(w http.ResponseWriter, r *http.Request, req *KeyRef) (KeyInfo, error) {
	ctx := r.Context()
	k, ki, err := a.resolveKeyInfo(ctx, req.Key, false)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := a.cfg.Store.DeleteKey(ctx, k.ID); err != nil {
		return KeyInfo{}, fmt.Errorf("delete key: %w", err)
	}
	a.log.InfoContext(ctx, "access key deleted", "access_key_id", k.ID, "request_id", requestID(w))
	return ki, nil
}

func (a *API) keySet(w http.ResponseWriter, r *http.Request, req *KeySetRequest) (KeyInfo, error) {
	ctx := r.Context()
	k, err := a.resolveKey(ctx, req.Key)
	if err != nil {
		return KeyInfo{}, err
	}
	if req.CanCreateBucket != nil {
		if err := a.cfg.Store.SetKeyCanCreateBucket(ctx, k.ID, *req.CanCreateBucket); err != nil {
			return KeyInfo{}, fmt.Errorf("set can_create_bucket: %w", err)
		}
	}
	return a.describeKey(ctx, k.ID, false)
}

// allow returns the handler of allow (grant) or deny (revoke).
func (a *API) allow(grant bool) func(http.ResponseWriter, *http.Request, *PermissionRequest) (KeyInfo, error) {
	return func(w http.ResponseWriter, r *http.Request, req *PermissionRequest) (KeyInfo, error) {
		if err := required("bucket", req.Bucket); err != nil {
			return KeyInfo{}, err
		}
		if !req.Read && !req.Write && !req.Owner {
			return KeyInfo{}, fmt.Errorf("%w: give at least one of read, write, owner", errInvalidRequest)
		}
		ctx := r.Context()
		k, err := a.resolveKey(ctx, req.Key)
		if err != nil {
			return KeyInfo{}, err
		}
		b, err := a.cfg.Store.GetBucket(ctx, req.Bucket)
		if err != nil {
			return KeyInfo{}, fmt.Errorf("get bucket: %w", err)
		}
		p := k.Perms[b.ID]
		set := func(cur *bool, flag bool) {
			if flag {
				*cur = grant
			}
		}
		set(&p.Read, req.Read)
		set(&p.Write, req.Write)
		set(&p.Owner, req.Owner)
		if err := a.cfg.Store.SetPermission(ctx, k.ID, b.Name, p); err != nil {
			return KeyInfo{}, fmt.Errorf("set permission: %w", err)
		}
		a.log.InfoContext(ctx, "permission changed", "access_key_id", k.ID, "bucket", b.Name,
			"read", p.Read, "write", p.Write, "owner", p.Owner, "request_id", requestID(w))
		return a.describeKey(ctx, k.ID, false)
	}
}

func bucketInfo(b model.Bucket) BucketInfo {
	return BucketInfo{ID: b.ID, Name: b.Name, Created: b.Created, Owner: b.Owner}
}

func (a *API) bucketCreate(w http.ResponseWriter, r *http.Request, req *BucketCreateRequest) (BucketInfo, error) {
	if err := required("name", req.Name); err != nil {
		return BucketInfo{}, err
	}
	ctx := r.Context()
	owner := ""
	if req.Owner != "" {
		k, err := a.resolveKey(ctx, req.Owner)
		if err != nil {
			return BucketInfo{}, err
		}
		owner = k.ID
	}
	b, err := a.cfg.Store.CreateBucket(ctx, owner, req.Name)
	if err != nil {
		return BucketInfo{}, fmt.Errorf("create bucket: %w", err)
	}
	a.log.InfoContext(ctx, "bucket created", "bucket", b.Name, "owner", owner, "request_id", requestID(w))
	return bucketInfo(b), nil
}

func (a *API) bucketDelete(w http.ResponseWriter, r *http.Request, req *BucketRef) (struct{}, error) {
	if err := required("bucket", req.Bucket); err != nil {
		return struct{}{}, err
	}
	if err := a.cfg.Store.DeleteBucket(r.Context(), req.Bucket); err != nil {
		return struct{}{}, fmt.Errorf("delete bucket: %w", err)
	}
	a.log.InfoContext(r.Context(), "bucket deleted", "bucket", req.Bucket, "request_id", requestID(w))
	return struct{}{}, nil
}

func (a *API) bucketList(w http.ResponseWriter, r *http.Request) (BucketList, error) {
	bs, err := a.cfg.Store.ListBuckets(r.Context())
	if err != nil {
		return BucketList{}, fmt.Errorf("list buckets: %w", err)
	}
	out := BucketList{Buckets: make([]BucketInfo, 0, len(bs))}
	for _, b := range bs {
		out.Buckets = append(out.Buckets, bucketInfo(b))
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Name < out.Buckets[j].Name })
	return out, nil
}

func (a *API) bucketInfo(w http.ResponseWriter, r *http.Request) (BucketInfo, error) {
	name := r.URL.Query().Get("bucket")
	if err := required("bucket", name); err != nil {
		return BucketInfo{}, err
	}
	ctx := r.Context()
	b, err := a.cfg.Store.GetBucket(ctx, name)
	if err != nil {
		return BucketInfo{}, fmt.Errorf("get bucket: %w", err)
	}
	st, err := a.cfg.Store.BucketStats(ctx, name)
	if err != nil {
		return BucketInfo{}, fmt.Errorf("bucket stats: %w", err)
	}
	keys, err := a.cfg.Store.ListKeys(ctx)
	if err != nil {
		return BucketInfo{}, fmt.Errorf("list keys: %w", err)
	}
	bi := bucketInfo(b)
	bi.Stats = &st
	bi.Keys = []BucketKey{}
	for _, k := range keys {
		if p, ok := k.Perms[b.ID]; ok && (p.Read || p.Write || p.Owner) {
			bi.Keys = append(bi.Keys, BucketKey{AccessKeyID: k.ID, Name: k.Name, Perm: p})
		}
	}
	sort.Slice(bi.Keys, func(i, j int) bool { return bi.Keys[i].AccessKeyID < bi.Keys[j].AccessKeyID })
	return bi, nil
}
