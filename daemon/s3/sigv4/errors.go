package sigv4

import "errors"

// Sentinel errors. Returned errors may wrap them with detail; use errors.Is.
var (
	// ErrMissingAuth: the request carries no authentication at all (anonymous).
	ErrMissingAuth = errors.New("sigv4: missing authentication")
	// ErrUnknownAccessKey: the access key id is not known to the SecretFunc.
	ErrUnknownAccessKey = errors.New("sigv4: unknown access key id")
	// ErrSignatureMismatch: the request signature does not match.
	ErrSignatureMismatch = errors.New("sigv4: signature does not match")
	// ErrMalformedAuth: unparsable Authorization header, query or date.
	ErrMalformedAuth = errors.New("sigv4: malformed authorization")
	// ErrWrongRegion: the credential scope names another region.
	ErrWrongRegion = errors.New("sigv4: wrong region in credential scope")
	// ErrRequestExpired: a presigned URL used after X-Amz-Expires.
	ErrRequestExpired = errors.New("sigv4: request has expired")
	// ErrRequestTimeTooSkewed: request time too far from the server clock.
	ErrRequestTimeTooSkewed = errors.New("sigv4: request time too skewed")
	// ErrUnsupported: a recognised but unsupported scheme (SigV2, SigV4a).
	ErrUnsupported = errors.New("sigv4: unsupported signature scheme")
	// ErrContentSHA256Mismatch: the body does not hash to x-amz-content-sha256.
	ErrContentSHA256Mismatch = errors.New("sigv4: x-amz-content-sha256 does not match body")
	// ErrChunkSignatureMismatch: an aws-chunked chunk or trailer signature is wrong.
	ErrChunkSignatureMismatch = errors.New("sigv4: chunk signature does not match")
	// ErrIncompleteBody: the body ended early or its decoded length is wrong.
	ErrIncompleteBody = errors.New("sigv4: incomplete body")
	// ErrMalformedChunk: aws-chunked framing is invalid.
	ErrMalformedChunk = errors.New("sigv4: malformed aws-chunked body")
)
