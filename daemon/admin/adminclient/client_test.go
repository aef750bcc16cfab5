package adminclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/entrepot/entrepot/daemon/model"
)

func TestNewOptions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"socket", Options{Socket: "/run/x.sock"}, true},
		{"url", Options{URL: "http://127.0.0.1:3903"}, true},
		{"url wins over socket", Options{URL: "https://h:1/", Socket: "/x"}, true},
		{"nothing", Options{}, false},
		{"no scheme", Options{URL: "127.0.0.1:3903"}, false},
		{"bad scheme", Options{URL: "ftp://h:1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if (err == nil) != tc.ok {
				t.Errorf("New(%+v) = %v, want ok=%v", tc.opts, err, tc.ok)
			}
		})
	}
	if _, err := New(Options{}); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("empty options: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		is         error
		code       string
	}{
		{"no such bucket", `{"code":"NoSuchBucket","message":"x"}`, 404, model.ErrNoSuchBucket, "NoSuchBucket"},
		{"no such key", `{"code":"NoSuchAccessKey","message":"x"}`, 404, model.ErrNoSuchAccessKey, "NoSuchAccessKey"},
		{"not empty", `{"code":"BucketNotEmpty","message":"x"}`, 409, model.ErrBucketNotEmpty, "BucketNotEmpty"},
		{"not json", `oops`, 502, nil, "Bad Gateway"},
		{"unknown code", `{"code":"Weird","message":"x"}`, 500, nil, "Weird"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := New(Options{URL: srv.URL, Token: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.BucketInfo(context.Background(), "b")
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("err = %#v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v is not %v", err, tc.is)
			}
			if errors.Is(err, model.ErrInvalidArgument) {
				t.Errorf("%v matches an unrelated sentinel", err)
			}
		})
	}
}
