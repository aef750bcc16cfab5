package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/s3/sigv4"
)

// ErrorCode is an S3 error code as it appears in the <Code> element.
type ErrorCode string

// S3 error codes this server answers with. Each has one row in errorTable.
const (
	CodeAccessDenied                  ErrorCode = "AccessDenied"
	CodeAuthorizationHeaderMalformed  ErrorCode = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParamsError ErrorCode = "AuthorizationQueryParametersError"
	CodeBadDigest                     ErrorCode = "BadDigest"
	CodeBucketAlreadyExists           ErrorCode = "BucketAlreadyExists"
	CodeBucketAlreadyOwnedByYou       ErrorCode = "BucketAlreadyOwnedByYou"
	CodeBucketNotEmpty                ErrorCode = "BucketNotEmpty"
	CodeEntityTooLarge                ErrorCode = "EntityTooLarge"
	CodeEntityTooSmall                ErrorCode = "EntityTooSmall"
	CodeIllegalLocationConstraint     ErrorCode = "IllegalLocationConstraintException"
	CodeIncompleteBody                ErrorCode = "IncompleteBody"
	CodeInternalError                 ErrorCode = "InternalError"
	CodeInvalidAccessKeyID            ErrorCode = "InvalidAccessKeyId"
	CodeInvalidArgument               ErrorCode = "InvalidArgument"
	CodeInvalidBucketName             ErrorCode = "InvalidBucketName"
	CodeInvalidDigest                 ErrorCode = "InvalidDigest"
	CodeInvalidPart                   ErrorCode = "InvalidPart"
	CodeInvalidPartOrder              ErrorCode = "InvalidPartOrder"
	CodeInvalidRange                  ErrorCode = "InvalidRange"
	CodeInvalidRequest                ErrorCode = "InvalidRequest"
	CodeInvalidURI                    ErrorCode = "InvalidURI"
	CodeKeyTooLong                    ErrorCode = "KeyTooLongError"
	CodeMalformedXML                  ErrorCode = "MalformedXML"
	CodeMaxMessageLengthExceeded      ErrorCode = "MaxMessageLengthExceeded"
	CodeMetadataTooLarge              ErrorCode = "MetadataTooLarge"
	CodeMethodNotAllowed              ErrorCode = "MethodNotAllowed"
	CodeMissingContentLength          ErrorCode = "MissingContentLength"
	CodeNoSuchBucket                  ErrorCode = "NoSuchBucket"
	CodeNoSuchKey                     ErrorCode = "NoSuchKey"
	CodeNoSuchUpload                  ErrorCode = "NoSuchUpload"
	CodeNotImplemented                ErrorCode = "NotImplemented"
	CodeNotModified                   ErrorCode = "NotModified"
	CodePreconditionFailed            ErrorCode = "PreconditionFailed"
	CodeRequestTimeTooSkewed          ErrorCode = "RequestTimeTooSkewed"
	CodeServiceUnavailable            ErrorCode = "ServiceUnavailable"
	CodeSignatureDoesNotMatch         ErrorCode = "SignatureDoesNotMatch"
	CodeXAmzContentSHA256Mismatch     ErrorCode = "XAmzContentSHA256Mismatch"
)

type codeInfo struct {
	status  int
	message string
}

// errorTable is the one table of S3 error codes: HTTP status and default
// message (AWS wording where AWS documents one).
var errorTable = map[ErrorCode]codeInfo{
	CodeAccessDenied:                  {http.StatusForbidden, "Access Denied"},
	CodeAuthorizationHeaderMalformed:  {http.StatusBadRequest, "The authorization header is malformed."},
	CodeAuthorizationQueryParamsError: {http.StatusBadRequest, "The authorization query parameters are malformed."},
	CodeBadDigest:                     {http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."},
	CodeBucketAlreadyExists:           {http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."},
	CodeBucketAlreadyOwnedByYou:       {http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."},
	CodeBucketNotEmpty:                {http.StatusConflict, "The bucket you tried to delete is not empty."},
	CodeEntityTooLarge:                {http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."},
	CodeEntityTooSmall:                {http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."},
	CodeIllegalLocationConstraint:     {http.StatusBadRequest, "The location constraint is incompatible with the region this endpoint serves."},
	CodeIncompleteBody:                {http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	CodeInternalError:                 {http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	CodeInvalidAccessKeyID:            {http.StatusForbidden, "The AWS access key Id you provided does not exist in our records."},
	CodeInvalidArgument:               {http.StatusBadRequest, "Invalid Argument"},
	CodeInvalidBucketName:             {http.StatusBadRequest, "The specified bucket is not valid."},
	CodeInvalidDigest:                 {http.StatusBadRequest, "The Content-MD5 you specified is not valid."},
	CodeInvalidPart:                   {http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	CodeInvalidPartOrder:              {http.StatusBadRequest, "The list of parts was not in ascending order. Parts must be ordered by part number."},
	CodeInvalidRange:                  {http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable"},
	CodeInvalidRequest:                {http.StatusBadRequest, "Invalid Request"},
	CodeInvalidURI:                    {http.StatusBadRequest, "Couldn't parse the specified URI."},
	CodeKeyTooLong:                    {http.StatusBadRequest, "Your key is too long"},
	CodeMalformedXML:                  {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."},
	CodeMaxMessageLengthExceeded:      {http.StatusBadRequest, "Your request was too big."},
	CodeMetadataTooLarge:              {http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."},
	CodeMethodNotAllowed:              {http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	CodeMissingContentLength:          {http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	CodeNoSuchBucket:                  {http.StatusNotFound, "The specified bucket does not exist"},
	CodeNoSuchKey:                     {http.StatusNotFound, "The specified key does not exist."},
	CodeNoSuchUpload:                  {http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
	CodeNotImplemented:                {http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."},
	CodeNotModified:                   {http.StatusNotModified, "Not Modified"},
	CodePreconditionFailed:            {http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold"},
	CodeRequestTimeTooSkewed:          {http.StatusForbidden, "The difference between the request time and the server's time is too large."},
	CodeServiceUnavailable:            {http.StatusServiceUnavailable, "Please reduce your request rate."},
	CodeSignatureDoesNotMatch:         {http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	CodeXAmzContentSHA256Mismatch:     {http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."},
	// Bucket configuration, tagging, SSE-C, POST uploads, quotas (extra_handler.go).
	CodeNoSuchWebsiteConfiguration:   {http.StatusNotFound, "The specified bucket does not have a website configuration"},
	CodeNoSuchCORSConfiguration:      {http.StatusNotFound, "The CORS configuration does not exist"},
	CodeNoSuchLifecycleConfiguration: {http.StatusNotFound, "The lifecycle configuration does not exist"},
	CodeNoSuchTagSet:                 {http.StatusNotFound, "The TagSet does not exist"},
	CodeInvalidTag:                   {http.StatusBadRequest, "The tag provided was not a valid tag."},
	CodeInvalidStorageClass:          {http.StatusBadRequest, "The storage class you specified is not valid"},
	CodeAccessForbidden:              {http.StatusForbidden, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."},
	CodeInvalidPolicyDocument:        {http.StatusBadRequest, "The content of the form does not meet the conditions specified in the policy document."},
	CodeMalformedPOSTRequest:         {http.StatusBadRequest, "The body of your POST request is not well-formed multipart/form-data."},
	CodeQuotaExceeded:                {http.StatusForbidden, "The bucket's quota would be exceeded."},
}

// Error is an S3 error answer. Err, when set, is the cause (for logs and
// errors.Is); it is never sent to the client.
type Error struct {
	Code    ErrorCode
	Message string // "" = the table's default message
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.message(), e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.message())
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int {
	if ci, ok := errorTable[e.Code]; ok {
		return ci.status
	}
	return http.StatusInternalServerError
}

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return errorTable[e.Code].message
}

// apiErr builds an *Error with an optional specific message.
func apiErr(code ErrorCode, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrInvalidArgument is a generic request-argument error (400 InvalidArgument).
var ErrInvalidArgument = errors.New("invalid argument")

// errXML is returned by the XML body decoders for any malformed body.
var errXML = errors.New("malformed XML")

// errBodyTooLarge is returned by the XML body decoders when a body exceeds its limit.
var errBodyTooLarge = errors.New("request body too large")

// authReason is the reason of a malformed-authorization error for the
// client, without the internal wrapping: "verify signature: verify: bad Date
// header: sigv4: malformed authorization" becomes "bad Date header".
func authReason(err error) string {
	s := err.Error()
	for _, sentinel := range []error{sigv4.ErrMalformedAuth, sigv4.ErrWrongRegion} {
		s = strings.TrimSuffix(s, ": "+sentinel.Error())
	}
	for _, p := range []string{"verify signature: ", "verify: "} {
		s = strings.TrimPrefix(s, p)
	}
	if s == "" {
		return err.Error()
	}
	return s
}

// toAPIError maps any error reaching the HTTP edge to one S3 error. It is the
// one place where domain errors (model, sigv4, router, XML, ranges, body
// integrity) meet S3 codes. presigned selects the presign flavour of auth errors.
func toAPIError(err error, presigned bool) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	code, msg := CodeInternalError, ""
	switch {
	// router
	case errors.Is(err, ErrNotImplemented):
		code = CodeNotImplemented
	case errors.Is(err, ErrMethodNotAllowed):
		code = CodeMethodNotAllowed
	case errors.Is(err, ErrInvalidPartNumber):
		code, msg = CodeInvalidArgument, ErrInvalidPartNumber.Error()
	case errors.Is(err, ErrInvalidURI):
		code = CodeInvalidURI
	case errors.Is(err, ErrInvalidArgument):
		code = CodeInvalidArgument
	case errors.Is(err, errXML):
		code = CodeMalformedXML
	case errors.Is(err, errBodyTooLarge):
		code = CodeMaxMessageLengthExceeded
	case errors.Is(err, errRangeNotSatisfiable):
		code = CodeInvalidRange
	// sigv4
	case errors.Is(err, sigv4.ErrMissingAuth):
		code = CodeAccessDenied
	case errors.Is(err, sigv4.ErrUnknownAccessKey):
		code = CodeInvalidAccessKeyID
	case errors.Is(err, sigv4.ErrSignatureMismatch), errors.Is(err, sigv4.ErrChunkSignatureMismatch):
		code = CodeSignatureDoesNotMatch
	case errors.Is(err, sigv4.ErrMalformedAuth), errors.Is(err, sigv4.ErrWrongRegion):
		code = CodeAuthorizationHeaderMalformed
		if presigned {
			code = CodeAuthorizationQueryParamsError
		}
		msg = authReason(err)
	case errors.Is(err, sigv4.ErrRequestExpired):
		code, msg = CodeAccessDenied, "Request has expired"
	case errors.Is(err, sigv4.ErrRequestTimeTooSkewed):
		code = CodeRequestTimeTooSkewed
	case errors.Is(err, sigv4.ErrUnsupported):
		code, msg = CodeNotImplemented, "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported."
	case errors.Is(err, sigv4.ErrContentSHA256Mismatch):
		code = CodeXAmzContentSHA256Mismatch
	case errors.Is(err, sigv4.ErrIncompleteBody):
		code = CodeIncompleteBody
	case errors.Is(err, sigv4.ErrMalformedChunk):
		code, msg = CodeIncompleteBody, "The aws-chunked body is malformed."
	// model
	case errors.Is(err, model.ErrNoSuchBucket):
		code = CodeNoSuchBucket
	case errors.Is(err, model.ErrBucketAlreadyExists):
		code = CodeBucketAlreadyExists
	case errors.Is(err, model.ErrBucketAlreadyOwnedByYou):
		code = CodeBucketAlreadyOwnedByYou
	case errors.Is(err, model.ErrBucketNotEmpty):
		code = CodeBucketNotEmpty
	case errors.Is(err, model.ErrInvalidBucketName):
		code = CodeInvalidBucketName
	case errors.Is(err, model.ErrNoSuchKey):
		code = CodeNoSuchKey
	case errors.Is(err, model.ErrKeyTooLong):
		code = CodeKeyTooLong
	case errors.Is(err, model.ErrNoSuchUpload):
		code = CodeNoSuchUpload
	case errors.Is(err, model.ErrInvalidPart):
		code = CodeInvalidPart
	case errors.Is(err, model.ErrInvalidPartOrder):
		code = CodeInvalidPartOrder
	case errors.Is(err, model.ErrEntityTooSmall):
		code = CodeEntityTooSmall
	case errors.Is(err, model.ErrEntityTooLarge):
		code = CodeEntityTooLarge
	case errors.Is(err, model.ErrPreconditionFailed):
		code = CodePreconditionFailed
	case errors.Is(err, model.ErrNoSuchAccessKey):
		code = CodeInvalidAccessKeyID
	case errors.Is(err, model.ErrInvalidArgument):
		code, msg = CodeInvalidArgument, err.Error()
	case errors.Is(err, model.ErrBadDigest):
		code = CodeBadDigest
	case errors.Is(err, model.ErrQuotaExceeded):
		code = CodeQuotaExceeded
	case errors.Is(err, model.ErrUnavailable):
		// No layout yet, or too few replicas answered: clients retry 503s.
		code, msg = CodeServiceUnavailable, "Not enough storage nodes are reachable to serve this request; retry later."
	// transport
	case errors.Is(err, context.DeadlineExceeded):
		code = CodeServiceUnavailable
	case errors.Is(err, context.Canceled):
		// The client went away before the request completed.
		code, msg = CodeIncompleteBody, "The request was canceled before it completed."
	}
	var mbe *http.MaxBytesError
	if code == CodeInternalError && errors.As(err, &mbe) {
		code = CodeMaxMessageLengthExceeded
	}
	return &Error{Code: code, Message: msg, Err: err}
}

// errorBody is the XML document of an error answer.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId,omitempty"`
	// Extra elements AWS adds for some codes.
	Key          string `xml:"Key,omitempty"`
	BucketName   string `xml:"BucketName,omitempty"`
	ActualSize   string `xml:"ActualObjectSize,omitempty"`
	RangeRequest string `xml:"RangeRequested,omitempty"`
}
