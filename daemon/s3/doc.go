// Package s3 serves the Amazon S3 REST API on net/http on top of a small
// storage interface (Backend, implemented by *model.Store).
//
// The package is organised as:
//   - endpoint.go: ParseEndpoint, a pure router from (method, host, path,
//     query, a few headers) to an Endpoint naming the S3 operation;
//   - errors.go: the one table of S3 error codes and the one function
//     (toAPIError) that maps domain errors (model, sigv4, XML, ranges, body
//     integrity) to them;
//   - handler.go: NewHandler, authentication (SigV4 via package sigv4),
//     permissions, request ids, metrics and logging;
//   - one file per group of operations (bucket.go, object.go, copy.go,
//     list.go, multipart.go, delete.go);
//   - body.go: the single streaming verifier that hashes request bodies
//     (MD5 for the ETag plus one requested checksum) and checks them at EOF;
//   - xml.go, ranges.go, conditions.go: pure encoders, decoders and checks.
//
// The package never imports anything cluster-related: it sees storage only
// through Backend.
package s3
