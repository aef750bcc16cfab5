// Package sigv4 implements AWS Signature Version 4 as used by Amazon S3, for
// both sides of the wire.
//
// The server side is [Verifier]: it authenticates a request signed with an
// Authorization header or a presigned URL (query parameters), checks the
// credential scope (region, service, date), the clock skew and the expiry,
// compares signatures in constant time, rejects unsigned x-amz-* headers,
// and wraps the request body in a reader that verifies the payload while it
// streams, according to x-amz-content-sha256:
//
//   - a hex sha256: hashed incrementally, checked at EOF;
//   - UNSIGNED-PAYLOAD (the default for presigned URLs): passed through;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: aws-chunked, every chunk
//     signature chained from the seed signature, then the trailer signature;
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked without signatures,
//     with trailing headers (checksums) exposed by Result.Trailer.
//
// Chunk data is handed to the caller as it arrives, in the caller's read
// sizes, and a chunk's signature is checked when the chunk ends; a failure
// is returned by Read instead of io.EOF. Callers must therefore read the body
// to io.EOF before committing what they read. A chunk header line is capped
// at [MaxChunkLineLen] bytes and a chunk at [MaxChunkSize]; trailers are
// bounded too, so memory per request is constant. Trailer checksum values are
// exposed, not checked: that is the S3 layer's job.
//
// The client side ([SignRequest], [PresignURL], [NewChunkedWriter],
// [ChunkSigner]) exists for tests, benchmarks and internal clients.
//
// Everything here is pure: it depends only on net/http and the standard
// crypto packages. Errors wrap the package sentinels (ErrX); callers map them
// to S3 error codes with errors.Is. Secrets are never logged or put in errors.
package sigv4
