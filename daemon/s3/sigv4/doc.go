// Package sigv4 implements AWS Signature Version 4 as used by Amazon S3, for
// both sides of the wire.
//
// The server side is [Verifier]: it authenticates a request signed with an
// Authorization header or a presigned URL (query parameters), checks the
// credential scope (region, service, date), the clock skew and the expiry,
// compares signatures in constant time and wraps the request body in a reader
// that verifies the payload while it streams: a plain sha256 checked at EOF,
// or an aws-chunked body whose chunk signatures are chained from the seed
// signature (optionally with trailing headers, signed or not).
//
// The client side ([SignRequest], [PresignURL], [NewChunkedWriter],
// [ChunkSigner]) exists for tests, benchmarks and internal clients.
//
// Everything here is pure: it depends only on net/http and the standard
// crypto packages. Errors wrap the package sentinels (ErrX); callers map them
// to S3 error codes with errors.Is. Secrets are never logged or put in errors.
package sigv4
