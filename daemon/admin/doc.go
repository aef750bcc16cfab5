// Package admin is entrepot's administration API: JSON over HTTP, RPC style.
//
// It is served on a unix socket (mode 0600; whoever can open the socket is
// the administrator) and optionally on TCP, where every endpoint except
// /health needs "Authorization: Bearer <admin token>". Without a configured
// admin token the TCP listener serves only /health and /metrics. /metrics
// accepts the metrics token or the admin token; it is open only when neither
// is configured.
//
// Endpoints (request bodies and responses are JSON; see api.go for the types):
//
//	GET  /health                       200 {"status":"ok"} when serving, 503 otherwise (no auth)
//	GET  /metrics                      Prometheus exposition
//	GET  /v1/status                    Status: the node's view
//	POST /v1/key/create                KeyCreateRequest  -> KeyInfo (with the secret)
//	POST /v1/key/import                KeyImportRequest  -> KeyInfo (without the secret)
//	GET  /v1/key/list                  -> KeyList
//	GET  /v1/key/info?key=K[&show_secret=true]  -> KeyInfo
//	POST /v1/key/delete                KeyRef            -> KeyInfo of the deleted key
//	POST /v1/key/set                   KeySetRequest     -> KeyInfo
//	POST /v1/key/allow                 PermissionRequest -> KeyInfo (adds the given permissions)
//	POST /v1/key/deny                  PermissionRequest -> KeyInfo (removes the given permissions)
//	POST /v1/bucket/create             BucketCreateRequest -> BucketInfo
//	POST /v1/bucket/delete             BucketRef         -> {} (409 BucketNotEmpty when objects remain)
//	GET  /v1/bucket/list               -> BucketList
//	GET  /v1/bucket/info?bucket=NAME   -> BucketInfo with stats and the keys' permissions
//	POST /v1/bucket/allow, /v1/bucket/deny   same as /v1/key/allow, /v1/key/deny
//	GET  /v1/node/id                   -> NodeIdentity (node ID and bootstrap addresses)
//	POST /v1/node/retire               NodeRef -> {} (decommission a member)
//	GET  /v1/cluster/status            -> ClusterStatus (members, reachability, layout, sync, rebalance)
//	GET  /v1/layout                    -> LayoutInfo (live versions, replicas per partition, last change)
//	GET  /v1/cluster/merkle?table=T    -> MerkleRoots (per-partition roots of a replicated table)
//	POST /v1/cluster/sync              -> {} (one full table anti-entropy round)
//	POST /v1/cluster/scrub             -> ScrubResult (verify local blocks now)
//
// The cluster endpoints answer 409 NotClustered on a node running alone.
//
// A key reference K is an access key id ("GK…") or a key name that is unique.
// Errors are {"code": "...", "message": "..."} with an HTTP status: 400
// InvalidRequest / InvalidArgument / InvalidBucketName, 401 Unauthorized,
// 403 Forbidden, 404 NoSuchAccessKey / NoSuchBucket / NoSuchEndpoint,
// 409 AccessKeyExists / BucketAlreadyExists / BucketNotEmpty / AmbiguousKey /
// NotClustered, 404 NoSuchNode / NoSuchTable, 503 ServiceUnavailable,
// 501 NotImplemented (this build lacks the part), 500 InternalError. Every response carries the X-Request-Id set by the daemon.
// Secrets are never logged.
package admin
