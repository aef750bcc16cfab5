// Package adminclient is a typed Go client for the entrepot admin API
// (package admin), over the unix socket or TCP with a bearer token. The CLI
// and the tests use it. Errors returned by the server are *Error values that
// match the model sentinels with errors.Is (for example
// errors.Is(err, model.ErrNoSuchBucket)).
package adminclient
