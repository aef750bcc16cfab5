// Package web serves buckets as static websites on the [web] listener.
//
// The Host header selects the bucket: "<bucket>.<root_domain>", or else the
// whole host name is the bucket name (for custom domains pointing at the
// server). A bucket is served only when it has a website configuration
// (PutBucketWebsite or `entrepot bucket website --allow`); it is then
// public for GET and HEAD. Paths ending in "/" get the index document;
// "/dir" redirects to "/dir/" when "dir/<index>" exists; missing keys get
// the error document with status 404; routing rules, RedirectAllRequestsTo
// and x-amz-website-redirect-location redirect. Objects are sent with
// http.ServeContent (ETag and Last-Modified conditionals, byte ranges),
// with the content type guessed from the extension when the stored one is
// missing or generic. CORS rules of the bucket apply, preflight included.
// Objects stored with SSE-C are never served (403).
package web
