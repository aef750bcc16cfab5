package webe2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/entrepot/entrepot/tests/harness"
)

type ssec struct{ raw, b64, md5 string }

func key(seed byte) ssec {
	r, b, m := newSSEKey(seed)
	return ssec{r, b, m}
}

func TestSSECSDK(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	n.bucket(t, "enc")
	k1, k2 := key(1), key(2)
	data := pattern(300_000, 7) // several 64 KiB chunks, not a multiple
	put := func(keyName string, k ssec, body []byte) *s3.PutObjectOutput {
		t.Helper()
		out, err := n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(keyName), Body: bytes.NewReader(body),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k.b64), SSECustomerKeyMD5: aws.String(k.md5)})
		if err != nil {
			t.Fatalf("put %s: %v", keyName, err)
		}
		if aws.ToString(out.SSECustomerKeyMD5) != k.md5 {
			t.Fatalf("put answer key md5 %q", aws.ToString(out.SSECustomerKeyMD5))
		}
		return out
	}
	get := func(keyName string, k *ssec, rng string) ([]byte, error) {
		in := &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(keyName)}
		if k != nil {
			in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String("AES256"), aws.String(k.b64), aws.String(k.md5)
		}
		if rng != "" {
			in.Range = aws.String(rng)
		}
		out, err := n.s3.GetObject(ctx, in)
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	o1 := put("a", k1, data)
	o2 := put("b", k1, data)
	if aws.ToString(o1.ETag) == aws.ToString(o2.ETag) {
		t.Fatal("two SSE-C objects with the same plaintext and key have the same ETag (ciphertexts equal)")
	}
	got, err := get("a", &k1, "")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get with key: %v (len %d)", err, len(got))
	}
	head, err := n.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("a"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k1.b64), SSECustomerKeyMD5: aws.String(k1.md5)})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.SSECustomerAlgorithm) != "AES256" {
		t.Fatalf("head: %v %+v", err, head)
	}
	for _, tc := range []struct {
		name, rng  string
		start, end int
	}{
		{"first bytes", "bytes=0-9", 0, 10},
		{"across a chunk boundary", "bytes=65530-65545", 65530, 65546},
		{"middle span", "bytes=100000-233333", 100000, 233334},
		{"suffix", "bytes=-5", len(data) - 5, len(data)},
		{"open end", "bytes=262140-", 262140, len(data)},
	} {
		t.Run("range "+tc.name, func(t *testing.T) {
			got, err := get("a", &k1, tc.rng)
			if err != nil || !bytes.Equal(got, data[tc.start:tc.end]) {
				t.Fatalf("range %s: %v len %d", tc.rng, err, len(got))
			}
		})
	}
	for _, tc := range []struct {
		name string
		k    *ssec
		code string
	}{
		{"no key", nil, "InvalidRequest"},
		{"wrong key", &k2, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := get("a", tc.k, "")
			if apiCode(err) != tc.code || got != nil {
				t.Fatalf("got %v (%d bytes), want %s", err, len(got), tc.code)
			}
		})
	}
	// A bad key MD5 is refused before anything is stored.
	_, err = n.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("bad"), Body: strings.NewReader("x"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k1.b64), SSECustomerKeyMD5: aws.String(k2.md5)})
	if apiCode(err) != "InvalidArgument" {
		t.Fatalf("bad md5: %v", err)
	}
	// Plain object read with a key: InvalidRequest.
	n.put(t, "enc", "plain", "", []byte("plain data"))
	if _, err := get("plain", &k1, ""); apiCode(err) != "InvalidRequest" {
		t.Fatalf("plain object with key: %v", err)
	}
	if got, err := get("plain", nil, ""); err != nil || string(got) != "plain data" {
		t.Fatalf("plain object in a bucket with SSE-C objects: %v %q", err, got)
	}
	// Empty object.
	put("empty", k1, nil)
	if got, err := get("empty", &k1, ""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %q", err, got)
	}

	t.Run("copy", func(t *testing.T) {
		src := aws.String("enc/a")
		// re-encrypt under k2
		_, err := n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("a-k2"), CopySource: src,
			CopySourceSSECustomerAlgorithm: aws.String("AES256"), CopySourceSSECustomerKey: aws.String(k1.b64), CopySourceSSECustomerKeyMD5: aws.String(k1.md5),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k2.b64), SSECustomerKeyMD5: aws.String(k2.md5)})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := get("a-k2", &k2, ""); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copy re-encrypted: %v", err)
		}
		if _, err := get("a-k2", &k1, ""); apiCode(err) != "AccessDenied" {
			t.Fatalf("copy readable with the source key: %v", err)
		}
		// decrypt to a plain object
		if _, err := n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("a-plain"), CopySource: src,
			CopySourceSSECustomerAlgorithm: aws.String("AES256"), CopySourceSSECustomerKey: aws.String(k1.b64), CopySourceSSECustomerKeyMD5: aws.String(k1.md5)}); err != nil {
			t.Fatal(err)
		}
		if got, err := get("a-plain", nil, ""); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copy decrypted: %v", err)
		}
		// source key missing
		_, err = n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("x"), CopySource: src})
		if apiCode(err) != "InvalidRequest" {
			t.Fatalf("copy without the source key: %v", err)
		}
		// plain source, encrypted destination
		if _, err := n.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("plain-enc"), CopySource: aws.String("enc/plain"),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k2.b64), SSECustomerKeyMD5: aws.String(k2.md5)}); err != nil {
			t.Fatal(err)
		}
		if got, err := get("plain-enc", &k2, ""); err != nil || string(got) != "plain data" {
			t.Fatalf("plain to encrypted: %v %q", err, got)
		}
	})

	t.Run("multipart", func(t *testing.T) {
		big := pattern(5<<20+70_000, 9)
		tail := pattern(123_457, 10)
		sse := func() (*string, *string, *string) {
			return aws.String("AES256"), aws.String(k1.b64), aws.String(k1.md5)
		}
		a, b, c := sse()
		up, err := n.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("mp"),
			SSECustomerAlgorithm: a, SSECustomerKey: b, SSECustomerKeyMD5: c})
		if err != nil {
			t.Fatal(err)
		}
		// A part without the key is refused.
		_, err = n.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(big)})
		if apiCode(err) != "InvalidRequest" {
			t.Fatalf("part without key: %v", err)
		}
		var parts []types.CompletedPart
		for i, body := range [][]byte{big, tail} {
			out, err := n.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String("mp"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body), SSECustomerAlgorithm: a, SSECustomerKey: b, SSECustomerKeyMD5: c})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		}
		if _, err := n.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("mp"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatal(err)
		}
		whole := append(append([]byte{}, big...), tail...)
		got, err := get("mp", &k1, "")
		if err != nil || !bytes.Equal(got, whole) {
			t.Fatalf("multipart get: %v len %d want %d", err, len(got), len(whole))
		}
		start := len(big) - 1000
		got, err = get("mp", &k1, fmt.Sprintf("bytes=%d-%d", start, start+1999))
		if err != nil || !bytes.Equal(got, whole[start:start+2000]) {
			t.Fatalf("range across parts: %v", err)
		}
		if _, err := get("mp", &k2, ""); apiCode(err) != "AccessDenied" {
			t.Fatalf("multipart wrong key: %v", err)
		}
	})
}

// TestSSECClients drives SSE-C with awscli and rclone.
func TestSSECClients(t *testing.T) {
	n := startNode(t)
	n.bucket(t, "cli")
	k := key(3)
	home := t.TempDir()
	env, err := harness.NewClientEnv(home, n.creds, n.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(home, "src.bin")
	data := pattern(200_000, 4)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(home, "key.bin")
	if err := os.WriteFile(keyFile, []byte(k.raw), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("awscli", func(t *testing.T) {
		requireTool(t, awsBin)
		aws := func(args ...string) string {
			return run(t, env.Env, 2*time.Minute, awsBin, append([]string{"--endpoint-url", n.endpoint}, args...)...)
		}
		aws("s3", "cp", src, "s3://cli/aws.bin", "--sse-c", "AES256", "--sse-c-key", "fileb://"+keyFile)
		dst := filepath.Join(home, "aws-back.bin")
		aws("s3", "cp", "s3://cli/aws.bin", dst, "--sse-c", "AES256", "--sse-c-key", "fileb://"+keyFile)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
			t.Fatal("awscli SSE-C round trip differs")
		}
		if out, err := runErr(env.Env, time.Minute, awsBin, "--endpoint-url", n.endpoint, "s3", "cp", "s3://cli/aws.bin", filepath.Join(home, "nokey.bin")); err == nil {
			t.Fatalf("download without the key succeeded: %s", out)
		}
		out := aws("s3api", "head-object", "--bucket", "cli", "--key", "aws.bin", "--sse-customer-algorithm", "AES256", "--sse-customer-key", "fileb://"+keyFile)
		if !strings.Contains(out, `"ContentLength": 200000`) || !strings.Contains(out, k.md5) {
			t.Fatalf("head-object: %s", out)
		}
	})
	t.Run("rclone", func(t *testing.T) {
		requireTool(t, "/usr/bin/rclone")
		// rclone refuses to send SSE-C keys over plain HTTP (as AWS does):
		// put TLS in front of the node.
		proxy, err := harness.NewTLSProxy(n.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		conf := filepath.Join(home, "rclone.conf")
		cfg := fmt.Sprintf("[e]\ntype = s3\nprovider = Other\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = %s\nforce_path_style = true\nsse_customer_algorithm = AES256\nsse_customer_key_base64 = %s\nsse_customer_key_md5 = %s\n",
			n.creds.AccessKeyID, n.creds.SecretAccessKey, proxy.URL(), n.creds.Region, k.b64, k.md5)
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		rc := func(args ...string) string {
			return run(t, env.Env, 2*time.Minute, "/usr/bin/rclone", append([]string{"--config", conf, "--no-check-certificate", "--retries", "1", "--low-level-retries", "1"}, args...)...)
		}
		rc("copyto", src, "e:cli/rclone.bin")
		dst := filepath.Join(home, "rclone-back.bin")
		rc("copyto", "e:cli/rclone.bin", dst)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
			t.Fatal("rclone SSE-C round trip differs")
		}
		tree := filepath.Join(home, "tree")
		if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		for i, size := range []int{0, 10, 70_000, 300_001} {
			if err := os.WriteFile(filepath.Join(tree, "sub", fmt.Sprintf("f%d", i)), pattern(size, byte(i)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rc("copy", tree, "e:cli/tree")
		rc("check", "--download", tree, "e:cli/tree")
	})
}
