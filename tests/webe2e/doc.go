// Package webe2e holds end-to-end tests of the features apps use beyond
// the S3 core: static websites (web listener), CORS, SSE-C, browser POST
// uploads, lifecycle, quotas, tagging, ACL answers and storage classes. Each
// test runs an in-process daemon on loopback with the [web] listener on,
// and drives it with aws-sdk-go-v2, plain HTTP, curl, headless Chromium,
// awscli and rclone (the tools are skipped when absent; they run with a
// clean environment from harness.NewClientEnv).
package webe2e
