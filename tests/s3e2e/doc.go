// Package s3e2e drives a real `entrepot server --dev` process with
// aws-sdk-go-v2 (newest defaults: CRC32 checksums on every upload, and over
// TLS aws-chunked bodies with trailing checksums) and minio-go (signed
// aws-chunked streaming over plain HTTP), covering the S3 operations of the
// single-node issue and the refusal of bad input: every refusal asserts the
// S3 error code and HTTP status, and that the store did not change.
//
// The package holds only tests; run it with `go test ./tests/s3e2e`. It
// builds the binary once (or uses ENTREPOT_BIN) and shares one node.
package s3e2e
