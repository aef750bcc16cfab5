package s3e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func signingKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func splitChunks(body []byte, size int) [][]byte {
	var out [][]byte
	for len(body) > 0 {
		n := min(size, len(body))
		out = append(out, body[:n])
		body = body[n:]
	}
	return out
}

// chunkFault selects how signedChunkedPut breaks the stream.
type chunkFault int

const (
	faultNone        chunkFault = iota
	faultBadSig                 // one chunk signature is altered
	faultTamperData             // one chunk's data is altered after signing
	faultBadFinalSig            // the final zero-length chunk's signature is altered
)

// signedChunkedPut uploads body as STREAMING-AWS4-HMAC-SHA256-PAYLOAD with
// chunks of chunkSize, breaking the stream as fault says (at chunk 1).
func signedChunkedPut(t *testing.T, bucket, key string, body []byte, chunkSize int, fault chunkFault) rawResult {
	t.Helper()
	c := cluster.Credentials()
	chunks := splitChunks(body, chunkSize)
	encLen := 0
	for _, ch := range chunks {
		encLen += len(strconv.FormatInt(int64(len(ch)), 16)) + len(";chunk-signature=") + 64 + 2 + len(ch) + 2
	}
	encLen += 1 + len(";chunk-signature=") + 64 + 4

	req := newRawRequest(t, http.MethodPut, bucket, key, nil, nil)
	req.ContentLength = int64(encLen)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(body)))
	now := time.Now().UTC()
	signRaw(t, req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now, "")
	auth := req.Header.Get("Authorization")
	i := strings.Index(auth, "Signature=")
	if i < 0 {
		t.Fatalf("no seed signature in %q", auth)
	}
	prev := auth[i+len("Signature="):]
	amzDate := req.Header.Get("X-Amz-Date")
	scope := amzDate[:8] + "/" + c.Region + "/s3/aws4_request"
	key4 := signingKey(c.SecretAccessKey, amzDate[:8], c.Region)
	sign := func(data []byte) string {
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + emptySHA256 + "\n" + sha256hex(data)
		prev = hex.EncodeToString(hmacSHA256(key4, sts))
		return prev
	}
	var enc bytes.Buffer
	for idx, ch := range append(chunks, nil) {
		sig := sign(ch)
		data := ch
		switch {
		case fault == faultBadSig && idx == 1, fault == faultBadFinalSig && idx == len(chunks):
			sig = strings.Repeat("0", 64)
		case fault == faultTamperData && idx == 1:
			data = bytes.Clone(ch)
			data[0] ^= 0xff
		}
		fmt.Fprintf(&enc, "%x;chunk-signature=%s\r\n", len(data), sig)
		enc.Write(data)
		enc.WriteString("\r\n")
	}
	if enc.Len() != encLen {
		t.Fatalf("encoded %d bytes, computed %d", enc.Len(), encLen)
	}
	req.Body = io.NopCloser(bytes.NewReader(enc.Bytes()))
	return doRaw(t, req)
}

// unsignedTrailerPut uploads body as STREAMING-UNSIGNED-PAYLOAD-TRAILER with
// a trailing x-amz-checksum-crc32; a non-empty crc overrides the right value.
// minioStyle ends the trailer line with a bare LF followed by two CRLFs, as
// minio-go v7 does.
func unsignedTrailerPut(t *testing.T, bucket, key string, body []byte, chunkSize int, crc string, minioStyle bool) rawResult {
	t.Helper()
	if crc == "" {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE(body))
		crc = base64.StdEncoding.EncodeToString(b[:])
	}
	var enc bytes.Buffer
	for _, ch := range splitChunks(body, chunkSize) {
		fmt.Fprintf(&enc, "%x\r\n", len(ch))
		enc.Write(ch)
		enc.WriteString("\r\n")
	}
	if minioStyle {
		fmt.Fprintf(&enc, "0\r\nx-amz-checksum-crc32:%s\n\r\n\r\n", crc)
	} else {
		fmt.Fprintf(&enc, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", crc)
	}
	req := newRawRequest(t, http.MethodPut, bucket, key, nil, nil)
	req.ContentLength = int64(enc.Len())
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	signRaw(t, req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", time.Now(), "")
	req.Body = io.NopCloser(bytes.NewReader(enc.Bytes()))
	return doRaw(t, req)
}

func TestSignedChunkedUpload(t *testing.T) {
	bucket := newBucket(t)
	body := payload(200000, 71)
	old := payload(1234, 72)
	put(t, bucket, "existing", old)

	if r := signedChunkedPut(t, bucket, "good", body, 65536, faultNone); r.Status != http.StatusOK {
		t.Fatalf("valid signed chunked upload: %d %s", r.Status, r.Body)
	}
	mustEqualBytes(t, "signed chunked upload", get(t, bucket, "good"), body)

	faults := []struct {
		name  string
		fault chunkFault
	}{
		{name: "bad chunk signature", fault: faultBadSig},
		{name: "data changed after signing", fault: faultTamperData},
		{name: "bad final chunk signature", fault: faultBadFinalSig},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			before := snapshot(t, bucket)
			for _, key := range []string{"new", "existing"} {
				r := signedChunkedPut(t, bucket, key, body, 65536, f.fault)
				wantRawErr(t, f.name+" on "+key, r, http.StatusForbidden, "SignatureDoesNotMatch")
			}
			unchanged(t, f.name, bucket, before)
		})
	}
}

func TestUnsignedTrailerUpload(t *testing.T) {
	bucket := newBucket(t)
	body := payload(150000, 81)
	if r := unsignedTrailerPut(t, bucket, "good", body, 40000, "", false); r.Status != http.StatusOK {
		t.Fatalf("valid unsigned-trailer upload: %d %s", r.Status, r.Body)
	}
	mustEqualBytes(t, "unsigned trailer upload", get(t, bucket, "good"), body)
	if r := unsignedTrailerPut(t, bucket, "minio-style", body, 65536, "", true); r.Status != http.StatusOK {
		t.Errorf("valid unsigned-trailer upload in minio-go's framing (name:value LF CRLF CRLF): %d %s", r.Status, r.Body)
	}
	before := snapshot(t, bucket)
	r := unsignedTrailerPut(t, bucket, "bad", body, 40000, "AAAAAA==", false)
	wantRawErr(t, "wrong trailing crc32", r, http.StatusBadRequest, "BadDigest")
	r = unsignedTrailerPut(t, bucket, "good", body, 40000, "AAAAAA==", false)
	wantRawErr(t, "wrong trailing crc32 over an existing key", r, http.StatusBadRequest, "BadDigest")
	unchanged(t, "wrong trailing checksum", bucket, before)
}
