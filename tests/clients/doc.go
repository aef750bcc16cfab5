// Package clients runs the Debian-packaged S3 clients (awscli, rclone,
// s3cmd, restic, boto3 through /usr/bin/python3) against a real
// `entrepot server --dev` and checks that bytes round-trip (sha256 of every
// file). Each tool is called by its absolute /usr/bin path with a clean
// environment (fresh HOME, explicit config files, no inherited AWS_*), so
// pyenv shims and the machine's AWS settings do not interfere.
//
// A missing client binary skips its test with a pointer to
// tests/install-deps.sh, except when CI is set: then it fails.
package clients
