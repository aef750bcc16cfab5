// Package config is the validated configuration of an entrepot node.
//
// A node reads one TOML file (default /etc/entrepot/entrepot.toml). Decoding is
// strict: an unknown key is an error that names it. Every value is validated and
// the first problem stops start-up with an error of the form
//
//	config: s3.listen: invalid address "x": missing port in address
//
// naming the key and the offending value. Sizes accept suffixes ("4096", "64K",
// "1M", "500G", "2T"; K/M/G/T/P and KiB/MiB/… are powers of 1024, KB/MB/… are
// powers of 1000). Durations use Go syntax ("10m", "1h30m").
//
// Secrets never live in the TOML file itself: admin.token_file,
// admin.metrics_token_file and rpc.secret_file name files that are read by
// [Config.ReadSecrets] and refused when they are readable by group or others.
// The secrets are kept in fields that are never encoded, so printing a Config
// (see [Config.Encode]) never shows them.
//
// [Dev] returns the embedded single-node development defaults used by
// `entrepot server --dev`. example.toml in this directory documents every key.
package config
