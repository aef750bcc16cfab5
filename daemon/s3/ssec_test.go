package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/entrepot/entrepot/daemon/model"
)

func testKey(seed byte) *ssecKey {
	raw := bytes.Repeat([]byte{seed}, 32)
	sum := md5.Sum(raw)
	return &ssecKey{raw: raw, md5b64: base64.StdEncoding.EncodeToString(sum[:])}
}

func ssecHeaderSet(algo, key, sum string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{objPrefix + hdrSSECAlgo: algo, objPrefix + hdrSSECKey: key, objPrefix + hdrSSECKeyMD5: sum} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func TestParseSSEC(t *testing.T) {
	k := testKey(1)
	b64 := base64.StdEncoding.EncodeToString(k.raw)
	other := testKey(2).md5b64
	cases := []struct {
		name    string
		h       http.Header
		wantKey bool
		wantErr bool
	}{
		{"none", http.Header{}, false, false},
		{"valid", ssecHeaderSet("AES256", b64, k.md5b64), true, false},
		{"wrong algorithm", ssecHeaderSet("aws:kms", b64, k.md5b64), false, true},
		{"no key", ssecHeaderSet("AES256", "", k.md5b64), false, true},
		{"short key", ssecHeaderSet("AES256", base64.StdEncoding.EncodeToString([]byte("short")), k.md5b64), false, true},
		{"not base64", ssecHeaderSet("AES256", "!!!", k.md5b64), false, true},
		{"no md5", ssecHeaderSet("AES256", b64, ""), false, true},
		{"md5 mismatch", ssecHeaderSet("AES256", b64, other), false, true},
		{"only md5", ssecHeaderSet("", "", k.md5b64), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSSEC(tc.h, objPrefix)
			if (err != nil) != tc.wantErr || (got != nil) != tc.wantKey {
				t.Fatalf("got %v, %v", got, err)
			}
			var ae *Error
			if err != nil && (!errors.As(err, &ae) || ae.Code != CodeInvalidArgument) {
				t.Fatalf("error %v is not InvalidArgument", err)
			}
		})
	}
}

func FuzzParseSSEC(f *testing.F) {
	k := testKey(1)
	f.Add("AES256", base64.StdEncoding.EncodeToString(k.raw), k.md5b64)
	f.Add("", "", "")
	f.Add("AES256", "!!", "x")
	f.Fuzz(func(t *testing.T, algo, key, sum string) {
		got, err := parseSSEC(ssecHeaderSet(algo, key, sum), objPrefix)
		if err == nil && got != nil && (len(got.raw) != 32 || algo != "AES256") {
			t.Fatalf("accepted a bad key: %q %q", algo, key)
		}
	})
}

func TestPlainSize(t *testing.T) {
	for _, tc := range []struct {
		stored, plain int64
		bad           bool
	}{
		{0, 0, false},
		{sseOverhead + 1, 1, false},
		{sseChunkStored, sseChunk, false},
		{sseChunkStored + sseOverhead + 10, sseChunk + 10, false},
		{sseOverhead, 0, true},
		{sseChunkStored + 5, 0, true},
	} {
		got, err := plainSize(tc.stored)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.plain) {
			t.Errorf("plainSize(%d) = %d, %v; want %d (bad %v)", tc.stored, got, err, tc.plain, tc.bad)
		}
	}
}

// encryptParts encrypts each plaintext as one part and returns the stored
// object and its layout.
func encryptParts(t testing.TB, k *ssecKey, info *model.SSECInfo, numbers []int, plains [][]byte) ([]byte, []model.PartSize) {
	var stored []byte
	var parts []model.PartSize
	for i, p := range plains {
		enc, err := newEncryptReader(bytes.NewReader(p), k, info, numbers[i])
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(enc)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, c...)
		parts = append(parts, model.PartSize{Number: numbers[i], Size: int64(len(c))})
	}
	return stored, parts
}

func decryptRange(k *ssecKey, info *model.SSECInfo, stored []byte, parts []model.PartSize, off, n int64) ([]byte, error) {
	plain, _, err := plainLayout(parts)
	if err != nil {
		return nil, err
	}
	open := func(_ context.Context, o, l int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(stored[o : o+l])), nil
	}
	d, err := newDecryptReader(context.Background(), open, k, info, segments(parts, plain, off, n))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(d)
}

func TestSSECRoundTripRanges(t *testing.T) {
	k := testKey(7)
	info, err := newSSECInfo(k)
	if err != nil {
		t.Fatal(err)
	}
	p1 := bytes.Repeat([]byte("0123456789abcdef"), 9000) // 144000 bytes: 2 full chunks + tail
	p2 := bytes.Repeat([]byte("XYZ"), 30000)
	stored, parts := encryptParts(t, k, info, []int{1, 2}, [][]byte{p1, p2})
	whole := append(append([]byte{}, p1...), p2...)
	_, total, err := plainLayout(parts)
	if err != nil || total != int64(len(whole)) {
		t.Fatalf("layout total %d, %v; want %d", total, err, len(whole))
	}
	if bytes.Contains(stored, []byte("0123456789abcdef")) {
		t.Fatal("plaintext visible in the stored bytes")
	}
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"whole", 0, int64(len(whole))},
		{"first byte", 0, 1},
		{"chunk edge", sseChunk - 3, 6},
		{"part edge", int64(len(p1)) - 10, 20},
		{"inside part 2", int64(len(p1)) + 70000, 100},
		{"last byte", int64(len(whole)) - 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decryptRange(k, info, stored, parts, tc.off, tc.n)
			if err != nil || !bytes.Equal(got, whole[tc.off:tc.off+tc.n]) {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		if _, err := decryptRange(testKey(8), info, stored, parts, 0, 10); !errors.Is(err, ErrSSECCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other salt", func(t *testing.T) {
		info2 := *info
		info2.Salt = bytes.Repeat([]byte{1}, 32)
		if _, err := decryptRange(k, &info2, stored, parts, 0, 10); !errors.Is(err, ErrSSECCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("tampered byte", func(t *testing.T) {
		bad := append([]byte{}, stored...)
		bad[100] ^= 1
		if _, err := decryptRange(k, info, bad, parts, 0, 10); !errors.Is(err, ErrSSECCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("swapped chunks", func(t *testing.T) {
		bad := append([]byte{}, stored[sseChunkStored:2*sseChunkStored]...)
		bad = append(bad, stored[:sseChunkStored]...)
		bad = append(bad, stored[2*sseChunkStored:]...)
		if _, err := decryptRange(k, info, bad, parts, 0, 10); !errors.Is(err, ErrSSECCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("part renumbered", func(t *testing.T) {
		moved := []model.PartSize{{Number: 1, Size: parts[0].Size}, {Number: 3, Size: parts[1].Size}}
		if _, err := decryptRange(k, info, stored, moved, int64(len(p1)), 10); !errors.Is(err, ErrSSECCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("same plaintext differs", func(t *testing.T) {
		again, _ := encryptParts(t, k, info, []int{1, 2}, [][]byte{p1, p2})
		if bytes.Equal(again, stored) {
			t.Fatal("two encryptions of the same data are equal")
		}
	})
}

func FuzzSSECRanges(f *testing.F) {
	f.Add(uint32(100), uint32(0), uint32(10), uint32(0))
	f.Add(uint32(200000), uint32(65530), uint32(20), uint32(70000))
	f.Add(uint32(1), uint32(0), uint32(1), uint32(1))
	k := testKey(3)
	info, _ := newSSECInfo(k)
	f.Fuzz(func(t *testing.T, n1, off, n, n2 uint32) {
		n1, n2 = n1%300_000, n2%100_000
		data := bytes.Repeat([]byte{'a', 'b', 'c'}, int(n1+n2)/3+1)[:n1+n2]
		if len(data) == 0 {
			return
		}
		stored, parts := encryptParts(t, k, info, []int{1, 2}, [][]byte{data[:n1], data[n1:]})
		o := int64(off) % int64(len(data))
		l := int64(n)%(int64(len(data))-o) + 1
		got, err := decryptRange(k, info, stored, parts, o, l)
		if err != nil || !bytes.Equal(got, data[o:o+l]) {
			t.Fatalf("range %d+%d of %d: %v", o, l, len(data), err)
		}
	})
}

func TestSecureTransport(t *testing.T) {
	for _, tc := range []struct {
		remote, proto string
		want          bool
	}{
		{"127.0.0.1:5555", "", true},
		{"[::1]:5555", "", true},
		{"192.168.1.20:5555", "", false},
		{"192.168.1.20:5555", "https", true},
		{"bogus", "", false},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if got := secureTransport(r); got != tc.want {
			t.Errorf("secureTransport(%q, %q) = %v", tc.remote, tc.proto, got)
		}
	}
}
