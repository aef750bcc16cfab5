package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/s3/sigv4"
)

// Browser form uploads (POST Object) with a SigV4-signed policy.

const maxFormFields = 64 << 10 // bytes of form fields before the file

// postPolicy is a decoded POST policy document.
type postPolicy struct {
	Expiration time.Time
	Conditions []postCondition
	// MinSize and MaxSize come from content-length-range (MaxSize -1: none).
	MinSize, MaxSize int64
}

// postCondition is one exact-match ("eq") or prefix ("starts-with") condition
// on a form field (name lower-case, without "$").
type postCondition struct {
	Op, Field, Value string
}

var errPolicy = errors.New("invalid POST policy")

// parsePostPolicy decodes the base64 JSON policy document.
func parsePostPolicy(b64 string) (postPolicy, error) {
	p := postPolicy{MaxSize: -1}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return p, fmt.Errorf("policy is not base64: %w", errPolicy)
	}
	var doc struct {
		Expiration string            `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return p, fmt.Errorf("policy is not JSON: %w", errPolicy)
	}
	if p.Expiration, err = time.Parse(time.RFC3339, doc.Expiration); err != nil {
		return p, fmt.Errorf("policy expiration %q: %w", doc.Expiration, errPolicy)
	}
	for _, c := range doc.Conditions {
		var obj map[string]string
		if json.Unmarshal(c, &obj) == nil {
			if len(obj) != 1 {
				return p, fmt.Errorf("condition object with %d fields: %w", len(obj), errPolicy)
			}
			for k, v := range obj {
				p.Conditions = append(p.Conditions, postCondition{"eq", strings.ToLower(strings.TrimPrefix(k, "$")), v})
			}
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(c, &arr); err != nil || len(arr) != 3 {
			return p, fmt.Errorf("condition %s: %w", c, errPolicy)
		}
		var op string
		if err := json.Unmarshal(arr[0], &op); err != nil {
			return p, fmt.Errorf("condition %s: %w", c, errPolicy)
		}
		switch op = strings.ToLower(op); op {
		case "content-length-range":
			var lo, hi int64
			if json.Unmarshal(arr[1], &lo) != nil || json.Unmarshal(arr[2], &hi) != nil || lo < 0 || hi < lo {
				return p, fmt.Errorf("condition %s: %w", c, errPolicy)
			}
			p.MinSize, p.MaxSize = lo, hi
		case "eq", "starts-with":
			var f, v string
			if json.Unmarshal(arr[1], &f) != nil || json.Unmarshal(arr[2], &v) != nil || !strings.HasPrefix(f, "$") {
				return p, fmt.Errorf("condition %s: %w", c, errPolicy)
			}
			p.Conditions = append(p.Conditions, postCondition{op, strings.ToLower(f[1:]), v})
		default:
			return p, fmt.Errorf("condition operator %q: %w", op, errPolicy)
		}
	}
	return p, nil
}

// exemptFields need no policy condition.
func exemptField(name string) bool {
	switch name {
	case "x-amz-signature", "file", "policy":
		return true
	}
	return strings.HasPrefix(name, "x-ignore-")
}

// checkFields checks every condition holds and every field is covered.
func (p postPolicy) checkFields(fields map[string]string) error {
	covered := map[string]bool{}
	for _, c := range p.Conditions {
		v, ok := fields[c.Field]
		covered[c.Field] = true
		switch c.Op {
		case "eq":
			if v != c.Value || (!ok && c.Value != "") {
				return apiErr(CodeAccessDenied, fmt.Sprintf(`Invalid according to Policy: Policy Condition failed: ["eq", "$%s", "%s"]`, c.Field, c.Value))
			}
		case "starts-with":
			okPrefix := strings.HasPrefix(v, c.Value)
			if c.Field == "content-type" && !okPrefix { // a comma-separated list: each must match
				okPrefix = true
				for t := range strings.SplitSeq(v, ",") {
					okPrefix = okPrefix && strings.HasPrefix(strings.TrimSpace(t), c.Value)
				}
			}
			if !okPrefix {
				return apiErr(CodeAccessDenied, fmt.Sprintf(`Invalid according to Policy: Policy Condition failed: ["starts-with", "$%s", "%s"]`, c.Field, c.Value))
			}
		}
	}
	for name := range fields {
		if !covered[name] && !exemptField(name) && name != "bucket" {
			return apiErr(CodeAccessDenied, "Invalid according to Policy: Extra input fields: "+name)
		}
	}
	return nil
}

// sizeLimiter fails a POST body outside the policy's content-length-range.
type sizeLimiter struct {
	r        io.Reader
	n        int64
	min, max int64
}

func (s *sizeLimiter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.max >= 0 && s.n > s.max {
		return 0, apiErr(CodeEntityTooLarge, "")
	}
	if s.n > maxPutSize {
		return 0, apiErr(CodeEntityTooLarge, "")
	}
	if errors.Is(err, io.EOF) && s.n < s.min {
		return n, apiErr(CodeEntityTooSmall, "")
	}
	return n, err
}

func (h *handler) postObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := r.Context()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return apiErr(CodeMalformedPOSTRequest, "")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	fields := map[string]string{}
	size := 0
	var file *multipart.Part
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return apiErr(CodeMalformedPOSTRequest, "")
		}
		name := strings.ToLower(part.FormName())
		if name == "file" {
			file = part
			break
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFormFields+1))
		if err != nil {
			return apiErr(CodeMalformedPOSTRequest, "")
		}
		if size += len(name) + len(v); size > maxFormFields {
			return apiErr(CodeMaxMessageLengthExceeded, "")
		}
		fields[name] = string(v)
	}
	if file == nil {
		return apiErr(CodeInvalidArgument, "POST requires exactly one file upload per request.")
	}
	key := fields["key"]
	if key == "" {
		return apiErr(CodeInvalidArgument, "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
	}
	if fn := file.FileName(); fn != "" {
		key = strings.ReplaceAll(key, "${filename}", fn)
	}
	if err := h.authenticatePost(r, rq, fields); err != nil {
		return err
	}
	b, err := h.bucketFor(ctx, rq, rq.ep.Bucket, permWrite)
	if err != nil {
		return err
	}
	rq.ep.Key = key
	fields["bucket"] = b.Name
	pol, err := parsePostPolicy(fields["policy"])
	if err != nil {
		return apiErr(CodeInvalidPolicyDocument, "Invalid Policy: "+err.Error())
	}
	if !h.now().Before(pol.Expiration) {
		return apiErr(CodeAccessDenied, "Invalid according to Policy: Policy expired.")
	}
	if err := pol.checkFields(fields); err != nil {
		return err
	}
	hdr := http.Header{}
	for name, v := range fields {
		switch {
		case name == "content-type", name == "cache-control", name == "content-disposition",
			name == "content-encoding", name == "expires", name == "content-language",
			strings.HasPrefix(name, "x-amz-meta-"), name == "x-amz-website-redirect-location":
			hdr.Set(name, v)
		}
	}
	if hdr.Get("Content-Type") == "" {
		if ct := file.Header.Get("Content-Type"); ct != "" {
			hdr.Set("Content-Type", ct)
		}
	}
	hdrs, err := headersFromRequest(hdr)
	if err != nil {
		return err
	}
	if err := extraHeaders(hdr, &hdrs); err != nil {
		return err
	}
	if hdrs.WebsiteRedirect != "" {
		if err := h.markExtras(ctx, b); err != nil {
			return err
		}
	}
	if qb, cb, ok := h.quotaBucket(ctx, rq); ok {
		no, _ := h.replaced(ctx, qb.Name, key)
		if err := h.checkQuota(ctx, cb, qb, 1-no, 0); err != nil {
			return err
		}
	}
	body := &sizeLimiter{r: file, min: pol.MinSize, max: pol.MaxSize}
	meta, err := h.be.PutObject(ctx, model.PutInput{Bucket: b.Name, Key: key, Headers: hdrs, Body: body})
	if err != nil {
		return fmt.Errorf("post object: %w", err)
	}
	etag := quoteETag(meta.ETag)
	w.Header().Set("ETag", etag)
	loc := objectURL(r, b.Name, key)
	w.Header().Set("Location", loc)
	if redir := fields["success_action_redirect"]; redir != "" {
		if u, err := url.Parse(redir); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("bucket", b.Name)
			q.Set("key", key)
			q.Set("etag", etag)
			u.RawQuery = q.Encode()
			w.Header().Set("Location", u.String())
			w.WriteHeader(http.StatusSeeOther)
			return nil
		}
	}
	switch fields["success_action_status"] {
	case "200":
		w.WriteHeader(http.StatusOK)
	case "201":
		return writeXMLStatusNil(w, http.StatusCreated, postResponse{Location: loc, Bucket: b.Name, Key: key, ETag: etag})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

func writeXMLStatusNil(w http.ResponseWriter, status int, v any) error {
	writeXMLStatus(w, status, v)
	return nil
}

type postResponse struct {
	XMLName  struct{} `xml:"PostResponse"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// authenticatePost checks the form's SigV4 signature of the policy.
func (h *handler) authenticatePost(r *http.Request, rq *request, f map[string]string) error {
	if f["policy"] == "" || f["x-amz-signature"] == "" {
		return apiErr(CodeAccessDenied, "")
	}
	if f["x-amz-algorithm"] != "AWS4-HMAC-SHA256" {
		return apiErr(CodeInvalidArgument, "Only the AWS4-HMAC-SHA256 algorithm is supported for POST.")
	}
	cred := strings.Split(f["x-amz-credential"], "/")
	if len(cred) != 5 || cred[3] != "s3" || cred[4] != "aws4_request" {
		return apiErr(CodeInvalidArgument, "Invalid x-amz-credential.")
	}
	if cred[2] != h.region {
		return apiErr(CodeAuthorizationHeaderMalformed, "the region '"+cred[2]+"' is wrong; expecting '"+h.region+"'")
	}
	k, err := h.be.GetKey(r.Context(), cred[0])
	if err != nil {
		if errors.Is(err, model.ErrNoSuchAccessKey) {
			return apiErr(CodeInvalidAccessKeyID, "")
		}
		return fmt.Errorf("get key: %w", err)
	}
	m := hmac.New(sha256.New, sigv4.SigningKey(k.Secret, cred[1], cred[2], "s3"))
	m.Write([]byte(f["policy"]))
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(f["x-amz-signature"]))) {
		return apiErr(CodeSignatureDoesNotMatch, "")
	}
	k.Secret = ""
	rq.key = k
	rq.auth = &sigv4.Result{AccessKeyID: k.ID, DecodedLength: -1}
	return nil
}
