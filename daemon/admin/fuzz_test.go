package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/admintest"
)

// FuzzRequests feeds arbitrary bodies and queries to every endpoint: the API
// must answer with a JSON error or success, never a 500 or a panic.
func FuzzRequests(f *testing.F) {
	seeds := []struct{ path, body string }{
		{"/v1/key/create", `{"name":"a","can_create_bucket":true}`},
		{"/v1/key/import", `{"access_key_id":"GKx","secret_access_key":"0123456789","name":"n"}`},
		{"/v1/key/delete", `{"key":"a"}`},
		{"/v1/key/set", `{"key":"a","can_create_bucket":false}`},
		{"/v1/key/allow", `{"key":"a","bucket":"bbb","read":true}`},
		{"/v1/bucket/deny", `{"key":"a","bucket":"bbb","owner":true}`},
		{"/v1/bucket/create", `{"name":"bbb","owner":"a"}`},
		{"/v1/bucket/delete", `{"bucket":"bbb"}`},
		{"/v1/key/info?key=a&show_secret=1", ""},
		{"/v1/bucket/info?bucket=bbb", ""},
		{"/v1/key/create", `{`},
		{"/v1/key/create", `[]`},
		{"/v1/key/set", `{"key":"a","can_create_bucket":"yes"}`},
	}
	for _, s := range seeds {
		f.Add(s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		st := admintest.New()
		api, err := admin.New(admin.Config{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		h := api.LocalHandler()
		// Some state so that references can resolve.
		for _, setup := range []struct{ p, b string }{
			{"/v1/key/create", `{"name":"a"}`},
			{"/v1/bucket/create", `{"name":"bbb"}`},
		} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", setup.p, strings.NewReader(setup.b)))
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		for _, method := range []string{"GET", "POST"} {
			req, err := http.NewRequest(method, "http://admin"+path, strings.NewReader(body))
			if err != nil {
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %q %q: %d %s", method, path, body, rec.Code, rec.Body)
			}
			if rec.Code >= 300 && rec.Code < 400 {
				continue // ServeMux cleans paths like "/a/../b" with a redirect
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s %q: content type %q", method, path, ct)
			}
		}
	})
}
