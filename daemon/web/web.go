package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/daemon/model"
)

// Backend is what the website server reads; *model.Store implements it.
type Backend interface {
	GetBucket(ctx context.Context, name string) (model.Bucket, error)
	HeadObject(ctx context.Context, bucket, key string) (model.ObjectMeta, error)
	OpenObject(ctx context.Context, meta model.ObjectMeta, offset, length int64) (io.ReadCloser, error)
}

var _ Backend = (*model.Store)(nil)

// Config configures NewHandler.
type Config struct {
	// Backend is the storage; required.
	Backend Backend
	// RootDomain: a Host "<bucket>.<RootDomain>" selects <bucket>; any other
	// Host is taken whole as the bucket name. "" = whole Host only.
	RootDomain string
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer registers entrepot_web_requests_total{code} and
	// entrepot_web_request_duration_seconds; nil = no metrics.
	Registerer prometheus.Registerer
}

type handler struct {
	be       Backend
	root     string
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewHandler returns the website server's handler.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Backend == nil {
		return nil, errors.New("new web handler: Backend is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{be: cfg.Backend, root: strings.ToLower(strings.Trim(cfg.RootDomain, ".")), log: log.With("component", "web")}
	if cfg.Registerer != nil {
		h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_web_requests_total",
			Help: "Website requests by HTTP status.",
		}, []string{"code"})
		h.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "entrepot_web_request_duration_seconds",
			Help:    "Website request duration, until the response is fully written.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		})
		for _, c := range []prometheus.Collector{h.requests, h.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("new web handler: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// BucketFromHost returns the bucket a Host header selects.
func BucketFromHost(host, rootDomain string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if rootDomain != "" && strings.HasSuffix(host, "."+rootDomain) {
		return strings.TrimSuffix(host, "."+rootDomain)
	}
	return host
}

// webError is an error page: status, S3-style code and message.
type webError struct {
	status        int
	code, message string
}

func (h *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusRecorder{ResponseWriter: rw}
	defer func() {
		if h.requests != nil {
			st := w.status
			if st == 0 {
				st = http.StatusOK
			}
			h.requests.WithLabelValues(strconv.Itoa(st)).Inc()
			h.duration.Observe(time.Since(start).Seconds())
		}
	}()
	w.Header().Set("Server", "entrepot")
	if err := h.serve(w, r); err != nil {
		var we *webError
		if !errors.As(err, &we) {
			h.log.Info("web request", "host", r.Host, "path", r.URL.Path, "err", err)
			we = &webError{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
		}
		writeErrorPage(w, r, we)
	}
}

func (e *webError) Error() string { return e.code + ": " + e.message }

func writeErrorPage(w http.ResponseWriter, r *http.Request, e *webError) {
	title := strconv.Itoa(e.status) + " " + http.StatusText(e.status)
	body := "<html>\n<head><title>" + title + "</title></head>\n<body>\n<h1>" + title + "</h1>\n<ul>\n<li>Code: " +
		html.EscapeString(e.code) + "</li>\n<li>Message: " + html.EscapeString(e.message) + "</li>\n</ul>\n<hr/>\n</body>\n</html>\n"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := BucketFromHost(r.Host, h.root)
	b, err := h.be.GetBucket(ctx, name)
	if errors.Is(err, model.ErrNoSuchBucket) {
		return &webError{http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist"}
	}
	if err != nil {
		return fmt.Errorf("get bucket: %w", err)
	}
	if b.Config == nil || b.Config.Website == nil {
		return &webError{http.StatusNotFound, "NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"}
	}
	cfg := b.Config
	site := *cfg.Website
	if origin := r.Header.Get("Origin"); origin != "" {
		if r.Method == http.MethodOptions {
			return preflight(w, r, cfg.CORS)
		}
		if rule, ok := model.MatchCORS(cfg.CORS, origin, r.Method, nil); ok {
			setCORS(w.Header(), rule, origin, "")
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return &webError{http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource."}
	}
	if ra := site.RedirectAll; ra != nil {
		redirect(w, r, ra.Protocol, ra.HostName, r.URL.Path, http.StatusMovedPermanently)
		return nil
	}
	key, ok := site.WebsiteKey(r.URL.Path)
	if !ok {
		return h.notFound(w, r, b, site, strings.TrimPrefix(r.URL.Path, "/"))
	}
	for _, rule := range site.RoutingRules {
		if rule.HTTPErrorCodeReturnedEquals == "" && strings.HasPrefix(key, rule.KeyPrefixEquals) {
			return applyRule(w, r, rule, key)
		}
	}
	meta, err := h.be.HeadObject(ctx, b.Name, key)
	if errors.Is(err, model.ErrNoSuchKey) {
		// "/dir" whose "dir/index.html" exists: redirect to "/dir/" as S3 does.
		if site.IndexSuffix != "" && !strings.HasSuffix(key, "/") {
			if _, err := h.be.HeadObject(ctx, b.Name, key+"/"+site.IndexSuffix); err == nil {
				w.Header().Set("Location", r.URL.Path+"/")
				w.WriteHeader(http.StatusFound)
				return nil
			}
		}
		return h.notFound(w, r, b, site, key)
	}
	if err != nil {
		return fmt.Errorf("head object: %w", err)
	}
	if meta.Headers.WebsiteRedirect != "" {
		w.Header().Set("Location", meta.Headers.WebsiteRedirect)
		w.WriteHeader(http.StatusMovedPermanently)
		return nil
	}
	return h.serveObject(w, r, meta, http.StatusOK)
}

// notFound applies a 404 routing rule, else the error document, else an
// error page.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request, b model.Bucket, site model.WebsiteConfig, key string) error {
	for _, rule := range site.RoutingRules {
		if rule.HTTPErrorCodeReturnedEquals == "404" && strings.HasPrefix(key, rule.KeyPrefixEquals) {
			return applyRule(w, r, rule, key)
		}
	}
	if site.ErrorDocument != "" {
		meta, err := h.be.HeadObject(r.Context(), b.Name, site.ErrorDocument)
		if err == nil && meta.Headers.SSEC == nil {
			return h.serveObject(w, r, meta, http.StatusNotFound)
		}
	}
	return &webError{http.StatusNotFound, "NoSuchKey", "The specified key does not exist."}
}

func applyRule(w http.ResponseWriter, r *http.Request, rule model.RoutingRule, key string) error {
	rd := rule.Redirect
	newKey := key
	switch {
	case rd.ReplaceKeyWith != "":
		newKey = rd.ReplaceKeyWith
	case rd.ReplaceKeyPrefixWith != "":
		newKey = rd.ReplaceKeyPrefixWith + strings.TrimPrefix(key, rule.KeyPrefixEquals)
	}
	code := http.StatusMovedPermanently
	if n, err := strconv.Atoi(rd.HTTPRedirectCode); err == nil {
		code = n
	}
	redirect(w, r, rd.Protocol, rd.HostName, "/"+newKey, code)
	return nil
}

func redirect(w http.ResponseWriter, r *http.Request, proto, host, p string, code int) {
	if proto == "" {
		proto = "http"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			proto = "https"
		}
	}
	if host == "" {
		host = r.Host
	}
	w.Header().Set("Location", proto+"://"+host+p)
	w.WriteHeader(code)
}

// serveObject sends an object with conditional and range support (range
// and conditions only for status 200).
func (h *handler) serveObject(w http.ResponseWriter, r *http.Request, meta model.ObjectMeta, status int) error {
	if meta.Headers.SSEC != nil {
		return &webError{http.StatusForbidden, "AccessDenied", "The object is encrypted with a customer-provided key."}
	}
	hdr := w.Header()
	mh := meta.Headers
	ct := mh.ContentType
	if ct == "" || ct == "binary/octet-stream" || ct == "application/octet-stream" {
		if t := mime.TypeByExtension(path.Ext(meta.Key)); t != "" {
			ct = t
		} else if ct == "" {
			ct = "binary/octet-stream"
		}
	}
	hdr.Set("Content-Type", ct)
	for k, v := range map[string]string{"Content-Encoding": mh.ContentEncoding, "Content-Disposition": mh.ContentDisposition,
		"Content-Language": mh.ContentLanguage, "Cache-Control": mh.CacheControl, "Expires": mh.Expires} {
		if v != "" {
			hdr.Set(k, v)
		}
	}
	for k, v := range mh.UserMeta {
		hdr["x-amz-meta-"+k] = []string{v}
	}
	hdr.Set("ETag", `"`+meta.ETag+`"`)
	if status != http.StatusOK {
		hdr.Set("Content-Length", strconv.FormatInt(meta.Size, 10))
		w.WriteHeader(status)
		if r.Method == http.MethodHead || meta.Size == 0 {
			return nil
		}
		rc, err := h.be.OpenObject(r.Context(), meta, 0, meta.Size)
		if err != nil {
			return nil // headers are sent; the client sees a short body
		}
		defer rc.Close()
		_, _ = io.Copy(w, rc)
		return nil
	}
	http.ServeContent(w, r, "", meta.LastModified, &objectSeeker{ctx: r.Context(), be: h.be, meta: meta})
	return nil
}

// objectSeeker adapts an object to io.ReadSeeker for http.ServeContent: it
// opens the object lazily at the current offset and reopens after a seek.
type objectSeeker struct {
	ctx  context.Context
	be   Backend
	meta model.ObjectMeta
	pos  int64
	rc   io.ReadCloser
}

func (o *objectSeeker) Seek(off int64, whence int) (int64, error) {
	var n int64
	switch whence {
	case io.SeekStart:
		n = off
	case io.SeekCurrent:
		n = o.pos + off
	case io.SeekEnd:
		n = o.meta.Size + off
	}
	if n < 0 {
		return o.pos, errors.New("seek before start")
	}
	if n != o.pos && o.rc != nil {
		o.rc.Close()
		o.rc = nil
	}
	o.pos = n
	return n, nil
}

func (o *objectSeeker) Read(p []byte) (int, error) {
	if o.pos >= o.meta.Size {
		o.close()
		return 0, io.EOF
	}
	if o.rc == nil {
		rc, err := o.be.OpenObject(o.ctx, o.meta, o.pos, o.meta.Size-o.pos)
		if err != nil {
			return 0, err
		}
		o.rc = rc
	}
	n, err := o.rc.Read(p)
	o.pos += int64(n)
	if errors.Is(err, io.EOF) && o.pos < o.meta.Size {
		err = io.ErrUnexpectedEOF
	}
	if o.pos >= o.meta.Size {
		o.close()
		if err == nil {
			err = io.EOF
		}
	}
	return n, err
}

func (o *objectSeeker) close() {
	if o.rc != nil {
		o.rc.Close()
		o.rc = nil
	}
}

// preflight answers a CORS preflight from the bucket's CORS rules.
func preflight(w http.ResponseWriter, r *http.Request, rules []model.CORSRule) error {
	method := r.Header.Get("Access-Control-Request-Method")
	if method == "" {
		return &webError{http.StatusBadRequest, "BadRequest", "Invalid Access-Control-Request-Method: null"}
	}
	var hs []string
	for p := range strings.SplitSeq(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			hs = append(hs, p)
		}
	}
	rule, ok := model.MatchCORS(rules, r.Header.Get("Origin"), method, hs)
	if !ok {
		return &webError{http.StatusForbidden, "AccessForbidden", "CORSResponse: This CORS request is not allowed."}
	}
	setCORS(w.Header(), rule, r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Headers"))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func setCORS(hdr http.Header, rule model.CORSRule, origin, reqHeaders string) {
	allowed := origin
	for _, o := range rule.AllowedOrigins {
		if o == "*" {
			allowed = "*"
		}
	}
	hdr.Set("Access-Control-Allow-Origin", allowed)
	if allowed != "*" {
		hdr.Add("Vary", "Origin")
	}
	hdr.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if reqHeaders != "" {
		hdr.Set("Access-Control-Allow-Headers", reqHeaders)
	}
	if len(rule.ExposeHeaders) > 0 {
		hdr.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds > 0 {
		hdr.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAgeSeconds))
	}
}
