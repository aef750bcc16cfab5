package admin

import (
	"errors"
	"net/http"

	"github.com/entrepot/entrepot/daemon/model"
)

// ErrAmbiguousKey is returned when a key name matches several keys.
var ErrAmbiguousKey = errors.New("key name matches several keys; use the access key id")

// errInvalidRequest marks malformed requests (bad JSON, missing fields).
var errInvalidRequest = errors.New("invalid request")

// messageError is err answered with msg as its message: its code and status
// are err's.
type messageError struct {
	msg string
	err error
}

func (e messageError) Error() string { return e.msg }
func (e messageError) Unwrap() error { return e.err }

// errorCodes is the one table mapping domain errors to codes and statuses.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{model.ErrNoSuchAccessKey, "NoSuchAccessKey", http.StatusNotFound},
	{model.ErrNoSuchBucket, "NoSuchBucket", http.StatusNotFound},
	{model.ErrAccessKeyExists, "AccessKeyExists", http.StatusConflict},
	{model.ErrBucketAlreadyExists, "BucketAlreadyExists", http.StatusConflict},
	{model.ErrBucketAlreadyOwnedByYou, "BucketAlreadyExists", http.StatusConflict},
	{model.ErrBucketNotEmpty, "BucketNotEmpty", http.StatusConflict},
	{model.ErrInvalidBucketName, "InvalidBucketName", http.StatusBadRequest},
	{model.ErrInvalidArgument, "InvalidArgument", http.StatusBadRequest},
	{ErrAmbiguousKey, CodeAmbiguousKey, http.StatusConflict},
	{errInvalidRequest, CodeInvalidRequest, http.StatusBadRequest},
	{ErrNotClustered, "NotClustered", http.StatusConflict},
	{ErrUnknownNode, "NoSuchNode", http.StatusNotFound},
	{ErrUnknownTable, "NoSuchTable", http.StatusNotFound},
	{ErrUnavailable, "ServiceUnavailable", http.StatusServiceUnavailable},
	{ErrNotImplemented, "NotImplemented", http.StatusNotImplemented},
}

// codeFor returns the code and status for err; unknown errors are internal.
func codeFor(err error) (string, int) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code, e.status
		}
	}
	return CodeInternal, http.StatusInternalServerError
}

// ErrorForCode returns the sentinel error an error code stands for, or nil.
// The admin client uses it so callers can test errors.Is(err, model.ErrNoSuchBucket).
func ErrorForCode(code string) error {
	for _, e := range errorCodes {
		if e.code == code {
			return e.err
		}
	}
	return nil
}
