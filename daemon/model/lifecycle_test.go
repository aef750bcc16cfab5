package model

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestExpiryDue(t *testing.T) {
	mod := time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC)
	cases := []struct {
		name string
		days int
		now  time.Time
		want bool
	}{
		{"zero days never", 0, mod.AddDate(1, 0, 0), false},
		{"one day, same day", 1, mod.Add(time.Hour), false},
		{"one day, next day 15:30", 1, mod.Add(24 * time.Hour), false},
		{"one day, midnight after", 1, time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC), true},
		{"one day, just before that midnight", 1, time.Date(2026, 3, 11, 23, 59, 59, 0, time.UTC), false},
		{"exact midnight creation", 2, time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC), true},
		{"thirty days", 30, time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mod
			if tc.name == "exact midnight creation" {
				m = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
			}
			if got := ExpiryDue(m, tc.days, tc.now); got != tc.want {
				t.Fatalf("ExpiryDue(%v, %d, %v) = %v", m, tc.days, tc.now, got)
			}
		})
	}
}

func TestRunLifecycle(t *testing.T) {
	e := newEnv(t)
	e.bucket("lc-bucket")
	e.bucket("other")
	e.put("lc-bucket", "logs/a", []byte("small"))
	e.put("lc-bucket", "logs/big", randBytes(1, 10_000))
	e.put("lc-bucket", "keep/a", []byte("small"))
	e.put("other", "logs/a", []byte("small"))
	up, err := e.s.CreateMultipartUpload(e.ctx, "lc-bucket", "tmp/upload", Headers{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.UpdateBucketConfig(e.ctx, "lc-bucket", func(c *BucketConfig) error {
		c.Lifecycle = []LifecycleRule{
			{ID: "logs", Enabled: true, Prefix: "logs/", ExpirationDays: 1, SizeLessThan: 1000},
			{ID: "off", Enabled: false, Prefix: "keep/", ExpirationDays: 1},
			{ID: "mpu", Enabled: true, AbortIncompleteDays: 2},
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st, err := e.s.RunLifecycle(e.ctx, now)
	if err != nil || st != (LifecycleStats{}) {
		t.Fatalf("first pass: %+v %v", st, err)
	}
	st, err = e.s.RunLifecycle(e.ctx, now.Add(49*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Expired != 1 {
		t.Fatalf("expired %d, want 1 (logs/a only: big is over the size filter, keep/ is disabled)", st.Expired)
	}
	if _, err := e.s.HeadObject(e.ctx, "lc-bucket", "logs/a"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("logs/a: %v", err)
	}
	for _, k := range []string{"logs/big", "keep/a"} {
		if _, err := e.s.HeadObject(e.ctx, "lc-bucket", k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if !bytes.Equal(e.get("other", "logs/a"), []byte("small")) {
		t.Fatal("another bucket was touched")
	}
	st, err = e.s.RunLifecycle(e.ctx, now.Add(73*time.Hour))
	if err != nil || st.Aborted != 1 {
		t.Fatalf("abort pass: %+v %v", st, err)
	}
	if _, err := e.s.GetUpload(e.ctx, "lc-bucket", "tmp/upload", up.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("upload after abort rule: %v", err)
	}
	// Date rule.
	if _, err := e.s.UpdateBucketConfig(e.ctx, "lc-bucket", func(c *BucketConfig) error {
		c.Lifecycle = []LifecycleRule{{Enabled: true, ExpirationDate: now.UTC().Truncate(24 * time.Hour).Add(48 * time.Hour)}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.s.RunLifecycle(e.ctx, now); st.Expired != 0 {
		t.Fatalf("date rule fired early: %+v", st)
	}
	if st, _ := e.s.RunLifecycle(e.ctx, now.Add(72*time.Hour)); st.Expired != 2 {
		t.Fatalf("date rule: %+v", st)
	}
}

func TestRunLifecycleDailyTrigger(t *testing.T) {
	e := newEnv(t)
	e.bucket("daily")
	e.put("daily", "x", []byte("x"))
	if _, err := e.s.UpdateBucketConfig(e.ctx, "daily", func(c *BucketConfig) error {
		c.Lifecycle = []LifecycleRule{{Enabled: true, ExpirationDays: 1}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.s.now = func() time.Time { return time.Now().Add(72 * time.Hour) }
	trigger := make(chan struct{})
	e.s.StartLifecycle(trigger)
	trigger <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.s.HeadObject(e.ctx, "daily", "x"); errors.Is(err, ErrNoSuchKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the triggered lifecycle pass did not expire the object")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBucketConfigAndQuota(t *testing.T) {
	e := newEnv(t)
	e.bucket("quota")
	b, err := e.s.UpdateBucketConfig(e.ctx, "quota", func(c *BucketConfig) error {
		c.Quota = Quota{MaxObjects: 2, MaxSize: 100}
		c.Tags = map[string]string{"a": "b"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.s.GetBucket(e.ctx, "quota")
	if err != nil || got.Config == nil || got.Config.Quota != (Quota{MaxObjects: 2, MaxSize: 100}) || got.Config.Tags["a"] != "b" {
		t.Fatalf("config not stored: %+v %v", got.Config, err)
	}
	if err := e.s.CheckQuota(e.ctx, b, 1, 50); err != nil {
		t.Fatal(err)
	}
	e.put("quota", "one", randBytes(2, 60))
	b, _ = e.s.GetBucket(e.ctx, "quota")
	if err := e.s.CheckQuota(e.ctx, b, 1, 50); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("size quota: %v", err)
	}
	if err := e.s.CheckQuota(e.ctx, b, 0, -10); err != nil {
		t.Fatalf("a shrinking replacement must pass: %v", err)
	}
	e.put("quota", "two", []byte("x"))
	if err := e.s.CheckQuota(e.ctx, b, 1, 1); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("object quota: %v", err)
	}
	// Clearing a field stamps it (so the clearing wins over older values).
	b, err = e.s.UpdateBucketConfig(e.ctx, "quota", func(c *BucketConfig) error { c.Quota = Quota{}; return nil })
	if err != nil || b.Config == nil || b.Config.Quota != (Quota{}) || b.Config.TS.Quota == 0 || b.Config.Tags["a"] != "b" {
		t.Fatalf("cleared quota: %+v %v", b.Config, err)
	}
	if _, err := e.s.UpdateBucketConfig(e.ctx, "nosuch", func(*BucketConfig) error { return nil }); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}

func TestSetObjectTagsAndPartSizes(t *testing.T) {
	e := newEnv(t)
	e.bucket("tags")
	data := randBytes(3, 3*testBlock+5)
	m := e.put("tags", "k", data)
	m2, err := e.s.SetObjectTags(e.ctx, "tags", "k", map[string]string{"x": "y"})
	if err != nil || m2.ETag != m.ETag || m2.Headers.Tags["x"] != "y" {
		t.Fatalf("tags: %+v %v", m2, err)
	}
	if !bytes.Equal(e.get("tags", "k"), data) {
		t.Fatal("data changed by tagging")
	}
	ps, err := e.s.PartSizes(e.ctx, m2)
	if err != nil || len(ps) != 1 || ps[0].Size != int64(len(data)) {
		t.Fatalf("part sizes: %+v %v", ps, err)
	}
}

func TestMatchCORS(t *testing.T) {
	rules := []CORSRule{
		{ID: "exact", AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"Content-Type", "x-amz-*"}},
		{ID: "wild", AllowedOrigins: []string{"https://*.example.org"}, AllowedMethods: []string{"GET"}},
		{ID: "any", AllowedOrigins: []string{"*"}, AllowedMethods: []string{"HEAD"}, AllowedHeaders: []string{"*"}},
	}
	cases := []struct {
		name, origin, method string
		headers              []string
		want                 string
	}{
		{"exact", "https://app.example", "PUT", []string{"content-type", "X-Amz-Date"}, "exact"},
		{"header not allowed", "https://app.example", "PUT", []string{"authorization"}, ""},
		{"method not allowed", "https://app.example", "DELETE", nil, ""},
		{"wildcard origin", "https://a.b.example.org", "GET", nil, "wild"},
		{"wildcard needs suffix", "https://example.org.evil", "GET", nil, ""},
		{"star origin", "http://x", "HEAD", []string{"anything"}, "any"},
		{"origin case sensitive", "HTTPS://APP.EXAMPLE", "GET", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := MatchCORS(rules, tc.origin, tc.method, tc.headers)
			if (tc.want == "") == ok || (ok && r.ID != tc.want) {
				t.Fatalf("got %q %v, want %q", r.ID, ok, tc.want)
			}
		})
	}
}

func TestWebsiteKey(t *testing.T) {
	w := WebsiteConfig{IndexSuffix: "index.html"}
	for _, tc := range []struct{ path, key string }{
		{"/", "index.html"}, {"/a/", "a/index.html"}, {"/a/b.css", "a/b.css"}, {"/a b", "a b"},
	} {
		if k, ok := w.WebsiteKey(tc.path); !ok || k != tc.key {
			t.Fatalf("WebsiteKey(%q) = %q %v", tc.path, k, ok)
		}
	}
	if _, ok := (WebsiteConfig{}).WebsiteKey("/"); ok {
		t.Fatal("no index suffix: / names nothing")
	}
}

func TestMergeBucketPerField(t *testing.T) {
	base := Bucket{ID: "id", Name: "b"}
	web := base
	web.Config = &BucketConfig{Website: &WebsiteConfig{IndexSuffix: "index.html"}, TS: ConfigTimes{Website: 10}}
	quota := base
	quota.Config = &BucketConfig{Quota: Quota{MaxObjects: 5}, TS: ConfigTimes{Quota: 11}}
	a := lww[Bucket]{TS: 10, V: web}
	b := lww[Bucket]{TS: 11, V: quota}
	s := lwwSchema[Bucket]{}
	ab, ba := s.Merge(a, b), s.Merge(b, a)
	if !sameJSON(ab, ba) {
		t.Fatalf("merge is not commutative:\n%+v\n%+v", ab.V.Config, ba.V.Config)
	}
	if ab.TS != 11 || ab.V.Config == nil || ab.V.Config.Website == nil || ab.V.Config.Quota.MaxObjects != 5 {
		t.Fatalf("concurrent changes lost: %+v", ab.V.Config)
	}
	// A later clear of the website wins over the older website.
	cleared := lww[Bucket]{TS: 12, V: base}
	cleared.V.Config = &BucketConfig{TS: ConfigTimes{Website: 12}}
	m := s.Merge(ab, cleared)
	if m.V.Config.Website != nil || m.V.Config.Quota.MaxObjects != 5 || !sameJSON(m, s.Merge(cleared, ab)) {
		t.Fatalf("clear: %+v", m.V.Config)
	}
	// Associativity on the three.
	if !sameJSON(s.Merge(s.Merge(a, b), cleared), s.Merge(a, s.Merge(b, cleared))) {
		t.Fatal("merge is not associative")
	}
	// Deletion still wins by timestamp.
	del := lww[Bucket]{TS: 13, Del: true}
	if got := s.Merge(m, del); !got.Del {
		t.Fatal("deletion lost")
	}
	// Other register types are unchanged.
	k := lwwSchema[string]{}
	if got := k.Merge(lww[string]{TS: 1, V: "a"}, lww[string]{TS: 2, V: "b"}); got.V != "b" {
		t.Fatalf("string register: %+v", got)
	}
}
