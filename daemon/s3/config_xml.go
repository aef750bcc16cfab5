package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// Error codes of bucket configuration, tagging, SSE-C, POST uploads and quotas.
const (
	CodeNoSuchWebsiteConfiguration   ErrorCode = "NoSuchWebsiteConfiguration"
	CodeNoSuchCORSConfiguration      ErrorCode = "NoSuchCORSConfiguration"
	CodeNoSuchLifecycleConfiguration ErrorCode = "NoSuchLifecycleConfiguration"
	CodeNoSuchTagSet                 ErrorCode = "NoSuchTagSet"
	CodeInvalidTag                   ErrorCode = "InvalidTag"
	CodeInvalidStorageClass          ErrorCode = "InvalidStorageClass"
	CodeAccessForbidden              ErrorCode = "AccessForbidden"
	CodeInvalidPolicyDocument        ErrorCode = "InvalidPolicyDocument"
	CodeMalformedPOSTRequest         ErrorCode = "MalformedPOSTRequest"
	// CodeQuotaExceeded is entrepot's own (AWS has no bucket quotas).
	CodeQuotaExceeded ErrorCode = "QuotaExceeded"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// configBodyLimit bounds bucket configuration documents.
const configBodyLimit = 1 << 20

// ---- website ----

type xmlRedirect struct {
	HostName             string `xml:"HostName,omitempty"`
	HTTPRedirectCode     string `xml:"HttpRedirectCode,omitempty"`
	Protocol             string `xml:"Protocol,omitempty"`
	ReplaceKeyPrefixWith string `xml:"ReplaceKeyPrefixWith,omitempty"`
	ReplaceKeyWith       string `xml:"ReplaceKeyWith,omitempty"`
}

type xmlRoutingRule struct {
	Condition *struct {
		HTTPErrorCodeReturnedEquals string `xml:"HttpErrorCodeReturnedEquals,omitempty"`
		KeyPrefixEquals             string `xml:"KeyPrefixEquals,omitempty"`
	} `xml:"Condition,omitempty"`
	Redirect xmlRedirect `xml:"Redirect"`
}

type websiteConfiguration struct {
	XMLName       xml.Name `xml:"WebsiteConfiguration"`
	NS            string   `xml:"xmlns,attr,omitempty"`
	ErrorDocument *struct {
		Key string `xml:"Key"`
	} `xml:"ErrorDocument,omitempty"`
	IndexDocument *struct {
		Suffix string `xml:"Suffix"`
	} `xml:"IndexDocument,omitempty"`
	RedirectAllRequestsTo *struct {
		HostName string `xml:"HostName"`
		Protocol string `xml:"Protocol,omitempty"`
	} `xml:"RedirectAllRequestsTo,omitempty"`
	RoutingRules *struct {
		Rules []xmlRoutingRule `xml:"RoutingRule"`
	} `xml:"RoutingRules,omitempty"`
}

func invalidArg(msg string) error { return apiErr(CodeInvalidArgument, msg) }

func checkRedirect(rd xmlRedirect) error {
	if rd.Protocol != "" && rd.Protocol != "http" && rd.Protocol != "https" {
		return invalidArg("Invalid protocol, protocol can be http or https. If not defined the protocol will be selected automatically.")
	}
	if rd.ReplaceKeyPrefixWith != "" && rd.ReplaceKeyWith != "" {
		return invalidArg("You can only define ReplaceKeyPrefix or ReplaceKey but not both.")
	}
	if rd.HTTPRedirectCode != "" {
		n, err := strconv.Atoi(rd.HTTPRedirectCode)
		if err != nil || n < 300 || n > 399 || n == 300 || n == 304 {
			return invalidArg("The provided HTTP redirect code (" + rd.HTTPRedirectCode + ") is not valid. Valid codes are 3XX except 300.")
		}
	}
	return nil
}

// websiteFromXML validates a PutBucketWebsite document as AWS does.
func websiteFromXML(data []byte) (*model.WebsiteConfig, error) {
	var x websiteConfiguration
	if err := decodeXMLBytes(data, "WebsiteConfiguration", &x); err != nil {
		return nil, err
	}
	w := &model.WebsiteConfig{}
	if x.RedirectAllRequestsTo != nil {
		if x.IndexDocument != nil || x.ErrorDocument != nil || x.RoutingRules != nil {
			return nil, invalidArg("RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules.")
		}
		rd := xmlRedirect{HostName: x.RedirectAllRequestsTo.HostName, Protocol: x.RedirectAllRequestsTo.Protocol}
		if rd.HostName == "" {
			return nil, invalidArg("RedirectAllRequestsTo requires a HostName.")
		}
		if err := checkRedirect(rd); err != nil {
			return nil, err
		}
		w.RedirectAll = &model.Redirect{HostName: rd.HostName, Protocol: rd.Protocol}
		return w, nil
	}
	if x.IndexDocument == nil {
		return nil, invalidArg("A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty")
	}
	if s := x.IndexDocument.Suffix; s == "" || strings.Contains(s, "/") {
		return nil, invalidArg("The IndexDocument Suffix is not well formed")
	}
	w.IndexSuffix = x.IndexDocument.Suffix
	if x.ErrorDocument != nil {
		if x.ErrorDocument.Key == "" {
			return nil, invalidArg("The ErrorDocument Key is not well formed")
		}
		w.ErrorDocument = x.ErrorDocument.Key
	}
	if x.RoutingRules != nil {
		if len(x.RoutingRules.Rules) > 50 {
			return nil, invalidArg("The number of routing rules must not exceed 50.")
		}
		for _, r := range x.RoutingRules.Rules {
			if err := checkRedirect(r.Redirect); err != nil {
				return nil, err
			}
			rr := model.RoutingRule{Redirect: model.Redirect(r.Redirect)}
			if c := r.Condition; c != nil {
				if c.HTTPErrorCodeReturnedEquals != "" {
					n, err := strconv.Atoi(c.HTTPErrorCodeReturnedEquals)
					if err != nil || n < 400 || n > 599 {
						return nil, invalidArg("The provided HTTP error code (" + c.HTTPErrorCodeReturnedEquals + ") is not valid. Valid codes are 4XX or 5XX.")
					}
				}
				rr.HTTPErrorCodeReturnedEquals, rr.KeyPrefixEquals = c.HTTPErrorCodeReturnedEquals, c.KeyPrefixEquals
			}
			w.RoutingRules = append(w.RoutingRules, rr)
		}
	}
	return w, nil
}

func websiteToXML(w *model.WebsiteConfig) websiteConfiguration {
	x := websiteConfiguration{NS: s3NS}
	if w.RedirectAll != nil {
		x.RedirectAllRequestsTo = &struct {
			HostName string `xml:"HostName"`
			Protocol string `xml:"Protocol,omitempty"`
		}{w.RedirectAll.HostName, w.RedirectAll.Protocol}
		return x
	}
	if w.IndexSuffix != "" {
		x.IndexDocument = &struct {
			Suffix string `xml:"Suffix"`
		}{w.IndexSuffix}
	}
	if w.ErrorDocument != "" {
		x.ErrorDocument = &struct {
			Key string `xml:"Key"`
		}{w.ErrorDocument}
	}
	if len(w.RoutingRules) > 0 {
		x.RoutingRules = &struct {
			Rules []xmlRoutingRule `xml:"RoutingRule"`
		}{}
		for _, r := range w.RoutingRules {
			xr := xmlRoutingRule{Redirect: xmlRedirect(r.Redirect)}
			if r.KeyPrefixEquals != "" || r.HTTPErrorCodeReturnedEquals != "" {
				xr.Condition = &struct {
					HTTPErrorCodeReturnedEquals string `xml:"HttpErrorCodeReturnedEquals,omitempty"`
					KeyPrefixEquals             string `xml:"KeyPrefixEquals,omitempty"`
				}{r.HTTPErrorCodeReturnedEquals, r.KeyPrefixEquals}
			}
			x.RoutingRules.Rules = append(x.RoutingRules.Rules, xr)
		}
	}
	return x
}

// ---- CORS ----

type xmlCORSRule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader,omitempty"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader,omitempty"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds,omitempty"`
}

type corsConfiguration struct {
	XMLName xml.Name      `xml:"CORSConfiguration"`
	NS      string        `xml:"xmlns,attr,omitempty"`
	Rules   []xmlCORSRule `xml:"CORSRule"`
}

func corsFromXML(data []byte) ([]model.CORSRule, error) {
	var x corsConfiguration
	if err := decodeXMLBytes(data, "CORSConfiguration", &x); err != nil {
		return nil, err
	}
	if len(x.Rules) == 0 || len(x.Rules) > 100 {
		return nil, apiErr(CodeMalformedXML, "")
	}
	out := make([]model.CORSRule, 0, len(x.Rules))
	for _, r := range x.Rules {
		if len(r.AllowedMethods) == 0 || len(r.AllowedOrigins) == 0 || len(r.ID) > 255 {
			return nil, apiErr(CodeMalformedXML, "")
		}
		for _, m := range r.AllowedMethods {
			switch m {
			case "GET", "PUT", "HEAD", "POST", "DELETE":
			default:
				return nil, apiErr(CodeInvalidRequest, "Found unsupported HTTP method in CORS config. Unsupported method is "+m)
			}
		}
		for _, o := range r.AllowedOrigins {
			if strings.Count(o, "*") > 1 {
				return nil, apiErr(CodeInvalidRequest, `AllowedOrigin "`+o+`" can not have more than one wildcard.`)
			}
		}
		for _, h := range r.AllowedHeaders {
			if strings.Count(h, "*") > 1 {
				return nil, apiErr(CodeInvalidRequest, `AllowedHeader "`+h+`" can not have more than one wildcard.`)
			}
		}
		cr := model.CORSRule{ID: r.ID, AllowedOrigins: r.AllowedOrigins, AllowedMethods: r.AllowedMethods,
			AllowedHeaders: r.AllowedHeaders, ExposeHeaders: r.ExposeHeaders}
		if r.MaxAgeSeconds != nil {
			cr.MaxAgeSeconds = *r.MaxAgeSeconds
		}
		out = append(out, cr)
	}
	return out, nil
}

func corsToXML(rules []model.CORSRule) corsConfiguration {
	x := corsConfiguration{NS: s3NS}
	for _, r := range rules {
		xr := xmlCORSRule{ID: r.ID, AllowedHeaders: r.AllowedHeaders, AllowedMethods: r.AllowedMethods,
			AllowedOrigins: r.AllowedOrigins, ExposeHeaders: r.ExposeHeaders}
		if r.MaxAgeSeconds > 0 {
			xr.MaxAgeSeconds = &r.MaxAgeSeconds
		}
		x.Rules = append(x.Rules, xr)
	}
	return x
}

// ---- lifecycle ----

type xmlLifecycleFilter struct {
	Prefix                *string   `xml:"Prefix"`
	ObjectSizeGreaterThan *int64    `xml:"ObjectSizeGreaterThan"`
	ObjectSizeLessThan    *int64    `xml:"ObjectSizeLessThan"`
	Tag                   *struct{} `xml:"Tag"`
	And                   *struct {
		Prefix                *string    `xml:"Prefix"`
		ObjectSizeGreaterThan *int64     `xml:"ObjectSizeGreaterThan"`
		ObjectSizeLessThan    *int64     `xml:"ObjectSizeLessThan"`
		Tags                  []struct{} `xml:"Tag"`
	} `xml:"And"`
}

type xmlLifecycleRule struct {
	ID         string              `xml:"ID,omitempty"`
	Status     string              `xml:"Status"`
	Filter     *xmlLifecycleFilter `xml:"Filter"`
	Prefix     *string             `xml:"Prefix"` // legacy form
	Expiration *struct {
		Days                      *int   `xml:"Days"`
		Date                      string `xml:"Date,omitempty"`
		ExpiredObjectDeleteMarker *bool  `xml:"ExpiredObjectDeleteMarker"`
	} `xml:"Expiration"`
	AbortIncompleteMultipartUpload *struct {
		DaysAfterInitiation *int `xml:"DaysAfterInitiation"`
	} `xml:"AbortIncompleteMultipartUpload"`
	Transitions                 []struct{} `xml:"Transition"`
	NoncurrentVersionTransition []struct{} `xml:"NoncurrentVersionTransition"`
	NoncurrentVersionExpiration *struct{}  `xml:"NoncurrentVersionExpiration"`
}

type lifecycleConfiguration struct {
	XMLName xml.Name           `xml:"LifecycleConfiguration"`
	Rules   []xmlLifecycleRule `xml:"Rule"`
}

func lifecycleFromXML(data []byte) ([]model.LifecycleRule, error) {
	var x lifecycleConfiguration
	if err := decodeXMLBytes(data, "LifecycleConfiguration", &x); err != nil {
		return nil, err
	}
	if len(x.Rules) == 0 || len(x.Rules) > 1000 {
		return nil, apiErr(CodeMalformedXML, "")
	}
	ids := map[string]bool{}
	var out []model.LifecycleRule
	for _, r := range x.Rules {
		var lr model.LifecycleRule
		if len(r.ID) > 255 {
			return nil, invalidArg("ID length should not exceed allowed limit of 255")
		}
		if r.ID != "" {
			if ids[r.ID] {
				return nil, invalidArg("Rule ID must be unique. Found same ID for more than one rule")
			}
			ids[r.ID] = true
		}
		lr.ID = r.ID
		switch r.Status {
		case "Enabled":
			lr.Enabled = true
		case "Disabled":
		default:
			return nil, apiErr(CodeMalformedXML, "")
		}
		if len(r.Transitions) > 0 || len(r.NoncurrentVersionTransition) > 0 {
			return nil, apiErr(CodeNotImplemented, "Lifecycle transitions are not implemented: entrepot has one storage class.")
		}
		if r.Filter != nil && r.Prefix != nil {
			return nil, apiErr(CodeMalformedXML, "")
		}
		if r.Prefix != nil {
			lr.Prefix = *r.Prefix
		}
		if f := r.Filter; f != nil {
			n := 0
			for _, set := range []bool{f.Prefix != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil, f.Tag != nil, f.And != nil} {
				if set {
					n++
				}
			}
			if n > 1 {
				return nil, apiErr(CodeMalformedXML, "")
			}
			pfx, gt, lt := f.Prefix, f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
			if f.Tag != nil || (f.And != nil && len(f.And.Tags) > 0) {
				return nil, apiErr(CodeNotImplemented, "Lifecycle tag filters are not implemented.")
			}
			if f.And != nil {
				pfx, gt, lt = f.And.Prefix, f.And.ObjectSizeGreaterThan, f.And.ObjectSizeLessThan
			}
			if pfx != nil {
				lr.Prefix = *pfx
			}
			if gt != nil {
				lr.SizeGreaterThan = *gt
			}
			if lt != nil {
				lr.SizeLessThan = *lt
			}
			if lr.SizeGreaterThan < 0 || lr.SizeLessThan < 0 || (lr.SizeLessThan > 0 && lr.SizeLessThan <= lr.SizeGreaterThan) {
				return nil, invalidArg("Invalid object size range: ObjectSizeLessThan must be greater than ObjectSizeGreaterThan")
			}
		}
		action := false
		if e := r.Expiration; e != nil {
			switch {
			case e.Days != nil && e.Date != "":
				return nil, apiErr(CodeMalformedXML, "")
			case e.Days != nil:
				if *e.Days <= 0 {
					return nil, invalidArg("'Days' for Expiration action must be a positive integer")
				}
				lr.ExpirationDays = *e.Days
				action = true
			case e.Date != "":
				t, err := time.Parse(time.RFC3339, e.Date)
				if err != nil {
					if t, err = time.Parse("2006-01-02", e.Date); err != nil {
						return nil, invalidArg("Invalid date")
					}
				}
				if !t.UTC().Equal(t.UTC().Truncate(24 * time.Hour)) {
					return nil, invalidArg("'Date' must be at midnight GMT")
				}
				lr.ExpirationDate = t.UTC()
				action = true
			case e.ExpiredObjectDeleteMarker != nil:
				action = true // no versioning: there are no lone delete markers to clean
			}
		}
		if a := r.AbortIncompleteMultipartUpload; a != nil {
			if a.DaysAfterInitiation == nil || *a.DaysAfterInitiation <= 0 {
				return nil, invalidArg("'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer")
			}
			if lr.SizeGreaterThan > 0 || lr.SizeLessThan > 0 {
				return nil, apiErr(CodeInvalidRequest, "AbortIncompleteMultipartUpload cannot be specified with Tags or object size filters.")
			}
			lr.AbortIncompleteDays = *a.DaysAfterInitiation
			action = true
		}
		if r.NoncurrentVersionExpiration != nil {
			action = true // no versioning: nothing is ever noncurrent
		}
		if !action {
			return nil, apiErr(CodeInvalidRequest, "At least one action needs to be specified in a rule")
		}
		out = append(out, lr)
	}
	return out, nil
}

type xmlLifecycleRuleOut struct {
	ID     string `xml:"ID,omitempty"`
	Filter struct {
		Prefix *string `xml:"Prefix,omitempty"`
		And    *struct {
			Prefix                string `xml:"Prefix,omitempty"`
			ObjectSizeGreaterThan int64  `xml:"ObjectSizeGreaterThan,omitempty"`
			ObjectSizeLessThan    int64  `xml:"ObjectSizeLessThan,omitempty"`
		} `xml:"And,omitempty"`
	} `xml:"Filter"`
	Status     string `xml:"Status"`
	Expiration *struct {
		Days int    `xml:"Days,omitempty"`
		Date string `xml:"Date,omitempty"`
	} `xml:"Expiration,omitempty"`
	AbortIncompleteMultipartUpload *struct {
		DaysAfterInitiation int `xml:"DaysAfterInitiation"`
	} `xml:"AbortIncompleteMultipartUpload,omitempty"`
}

type lifecycleConfigurationOut struct {
	XMLName xml.Name              `xml:"LifecycleConfiguration"`
	NS      string                `xml:"xmlns,attr"`
	Rules   []xmlLifecycleRuleOut `xml:"Rule"`
}

func lifecycleToXML(rules []model.LifecycleRule) lifecycleConfigurationOut {
	x := lifecycleConfigurationOut{NS: s3NS}
	for _, r := range rules {
		o := xmlLifecycleRuleOut{ID: r.ID, Status: "Disabled"}
		if r.Enabled {
			o.Status = "Enabled"
		}
		if r.SizeGreaterThan > 0 || r.SizeLessThan > 0 {
			o.Filter.And = &struct {
				Prefix                string `xml:"Prefix,omitempty"`
				ObjectSizeGreaterThan int64  `xml:"ObjectSizeGreaterThan,omitempty"`
				ObjectSizeLessThan    int64  `xml:"ObjectSizeLessThan,omitempty"`
			}{r.Prefix, r.SizeGreaterThan, r.SizeLessThan}
		} else {
			p := r.Prefix
			o.Filter.Prefix = &p
		}
		if r.ExpirationDays > 0 || !r.ExpirationDate.IsZero() {
			o.Expiration = &struct {
				Days int    `xml:"Days,omitempty"`
				Date string `xml:"Date,omitempty"`
			}{Days: r.ExpirationDays}
			if !r.ExpirationDate.IsZero() {
				o.Expiration.Date = r.ExpirationDate.UTC().Format("2006-01-02T15:04:05.000Z")
			}
		}
		if r.AbortIncompleteDays > 0 {
			o.AbortIncompleteMultipartUpload = &struct {
				DaysAfterInitiation int `xml:"DaysAfterInitiation"`
			}{r.AbortIncompleteDays}
		}
		x.Rules = append(x.Rules, o)
	}
	return x
}

// ---- tagging ----

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	TagSet  struct {
		Tags []xmlTag `xml:"Tag"`
	} `xml:"TagSet"`
}

var errTooManyTags = errors.New("too many tags")

// checkTags validates a tag set: at most max tags, keys 1..128 and values
// 0..256 characters, no duplicate key, no "aws:" prefix.
func checkTags(tags []xmlTag, maxTags int) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, &Error{Code: CodeInvalidTag, Message: fmt.Sprintf("Object tags cannot be greater than %d", maxTags), Err: errTooManyTags}
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		if t.Key == "" || len([]rune(t.Key)) > 128 {
			return nil, apiErr(CodeInvalidTag, "The TagKey you have provided is invalid")
		}
		if len([]rune(t.Value)) > 256 {
			return nil, apiErr(CodeInvalidTag, "The TagValue you have provided is invalid")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, apiErr(CodeInvalidTag, "Your TagKey cannot be prefixed with aws:")
		}
		if _, dup := out[t.Key]; dup {
			return nil, apiErr(CodeInvalidTag, "Cannot provide multiple Tags with the same key")
		}
		out[t.Key] = t.Value
	}
	return out, nil
}

func tagsFromXML(data []byte, maxTags int) (map[string]string, error) {
	var x tagging
	if err := decodeXMLBytes(data, "Tagging", &x); err != nil {
		return nil, err
	}
	return checkTags(x.TagSet.Tags, maxTags)
}

// tagsFromHeader parses the x-amz-tagging header (a URL query string).
func tagsFromHeader(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, apiErr(CodeInvalidTag, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	var tags []xmlTag
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, apiErr(CodeInvalidTag, "Cannot provide multiple Tags with the same key")
		}
		tags = append(tags, xmlTag{k, vs[0]})
	}
	return checkTags(tags, 10)
}

func tagsToXML(tags map[string]string) tagging {
	x := tagging{NS: s3NS}
	x.TagSet.Tags = []xmlTag{}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		x.TagSet.Tags = append(x.TagSet.Tags, xmlTag{k, tags[k]})
	}
	return x
}

// ---- ACL ----

type aclGrantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	XSIType     string `xml:"xsi:type,attr"`
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	NS      string   `xml:"xmlns,attr"`
	Owner   struct {
		ID          string `xml:"ID"`
		DisplayName string `xml:"DisplayName"`
	} `xml:"Owner"`
	Grants []struct {
		Grantee    aclGrantee `xml:"Grantee"`
		Permission string     `xml:"Permission"`
	} `xml:"AccessControlList>Grant"`
}

// privateACL is the "private, owner has FULL_CONTROL" answer.
func privateACL(ownerID string) accessControlPolicy {
	x := accessControlPolicy{NS: s3NS}
	x.Owner.ID, x.Owner.DisplayName = ownerID, ownerID
	x.Grants = append(x.Grants, struct {
		Grantee    aclGrantee `xml:"Grantee"`
		Permission string     `xml:"Permission"`
	}{aclGrantee{"http://www.w3.org/2001/XMLSchema-instance", "CanonicalUser", ownerID, ownerID}, "FULL_CONTROL"})
	return x
}
