package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRegistryAndHTTP(t *testing.T) {
	reg := NewRegistry("v1.2.3")
	s3, err := NewHTTP(reg, "s3")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := NewHTTP(reg, "admin")
	if err != nil {
		t.Fatalf("second server with the same metric names: %v", err)
	}
	if _, err := NewHTTP(reg, "s3"); err == nil {
		t.Error("registering the same server twice succeeded")
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for i := 0; i < 3; i++ {
		s3.Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	admin.Wrap(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil))

	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`entrepot_build_info{goversion="`,
		`version="v1.2.3"} 1`,
		`entrepot_http_requests_total{code="418",method="get",server="s3"} 3`,
		`entrepot_http_requests_total{code="418",method="post",server="admin"} 1`,
		`go_goroutines`,
		`process_`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}
