package s3

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
)

// setCORSHeaders adds the CORS response headers of the bucket's first rule
// matching the request's Origin and method (S3 answers actual requests
// this way; a request no rule matches simply gets no CORS headers).
func (h *handler) setCORSHeaders(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.ep.Bucket == "" || rq.ep.Op == OpOptions {
		return
	}
	b, err := h.requestBucket(ctx, rq, rq.ep.Bucket)
	if err != nil || b.Config == nil || len(b.Config.CORS) == 0 {
		return
	}
	rule, ok := model.MatchCORS(b.Config.CORS, r.Header.Get("Origin"), r.Method, nil)
	if !ok {
		return
	}
	SetCORSResponse(w.Header(), rule, r.Header.Get("Origin"), r.Method, "")
}

// SetCORSResponse writes the Access-Control-* headers of a matched rule.
// reqHeaders is a preflight's Access-Control-Request-Headers ("" otherwise).
func SetCORSResponse(hdr http.Header, rule model.CORSRule, origin, method, reqHeaders string) {
	allowed := origin
	for _, o := range rule.AllowedOrigins {
		if o == "*" {
			allowed = "*"
			break
		}
	}
	hdr.Set("Access-Control-Allow-Origin", allowed)
	if allowed != "*" {
		hdr.Set("Access-Control-Allow-Credentials", "true")
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
	hdr.Add("Vary", "Access-Control-Request-Headers")
	hdr.Add("Vary", "Access-Control-Request-Method")
}

// SplitHeaderList splits a comma-separated header list.
func SplitHeaderList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// PreflightRule finds the rule answering a preflight OPTIONS request, or
// the S3 error to answer: 400 without Origin or Access-Control-Request-Method,
// 403 AccessForbidden when no rule allows it.
func PreflightRule(rules []model.CORSRule, r *http.Request) (model.CORSRule, error) {
	origin, method := r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method")
	if origin == "" {
		return model.CORSRule{}, apiErr(CodeInvalidRequest, "Insufficient information. Origin request header needed.")
	}
	if method == "" {
		return model.CORSRule{}, apiErr(CodeInvalidRequest, "Invalid Access-Control-Request-Method: null")
	}
	if len(rules) == 0 {
		return model.CORSRule{}, apiErr(CodeAccessForbidden, "CORSResponse: CORS is not enabled for this bucket.")
	}
	rule, ok := model.MatchCORS(rules, origin, method, SplitHeaderList(r.Header.Get("Access-Control-Request-Headers")))
	if !ok {
		return rule, apiErr(CodeAccessForbidden, "")
	}
	return rule, nil
}

// preflight answers a CORS preflight OPTIONS request (no authentication).
func (h *handler) preflight(w http.ResponseWriter, r *http.Request, rq *request) error {
	b, err := h.requestBucket(r.Context(), rq, rq.ep.Bucket)
	if err != nil {
		return err
	}
	var rules []model.CORSRule
	if b.Config != nil {
		rules = b.Config.CORS
	}
	rule, err := PreflightRule(rules, r)
	if err != nil {
		return err
	}
	SetCORSResponse(w.Header(), rule, r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Method"), r.Header.Get("Access-Control-Request-Headers"))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}
