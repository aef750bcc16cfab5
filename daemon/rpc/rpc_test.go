package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

const secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func newNode(t *testing.T) *Node {
	t.Helper()
	k, err := p2p.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(context.Background(), p2p.Config{
		IdentityFile: filepath.Join(t.TempDir(), "node.key"),
		Secret:       k,
		ListenAddrs:  []string{"/ip4/127.0.0.1/tcp/0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	n, err := New(Config{Host: h.Libp2p(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func link(t *testing.T, nodes ...*Node) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), time.Hour)
			}
		}
	}
}

type codeErr struct{ code string }

func (e codeErr) Error() string   { return "coded " + e.code }
func (e codeErr) RPCCode() string { return e.code }

func TestCall(t *testing.T) {
	a, b := newNode(t), newNode(t)
	link(t, a, b)
	b.Handle("echo", "upper", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
		if from != a.Self() {
			return nil, errors.New("wrong caller identity")
		}
		return bytes.ToUpper(p), nil
	})
	b.Handle("echo", "fail", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
		return nil, codeErr{"not-found"}
	})
	ctx := context.Background()
	out, err := a.Call(ctx, b.Self(), "echo", "upper", []byte("hello"))
	if err != nil || string(out) != "HELLO" {
		t.Fatalf("call: %q %v", out, err)
	}
	big := bytes.Repeat([]byte("x"), 4<<20)
	out, err = a.Call(ctx, b.Self(), "echo", "upper", big)
	if err != nil || len(out) != len(big) || out[0] != 'X' {
		t.Fatalf("4 MiB call: %d bytes, %v", len(out), err)
	}
	_, err = a.Call(ctx, b.Self(), "echo", "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "not-found" {
		t.Fatalf("remote error: %v", err)
	}
	_, err = a.Call(ctx, b.Self(), "echo", "missing", nil)
	if !errors.As(err, &re) || re.Code != "no-handler" {
		t.Fatalf("missing method: %v", err)
	}
	// A call to self never touches the network and still maps errors.
	a.Handle("echo", "upper", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) { return bytes.ToUpper(p), nil })
	if out, err := a.Call(ctx, a.Self(), "echo", "upper", []byte("me")); err != nil || string(out) != "ME" {
		t.Fatalf("self call: %q %v", out, err)
	}
}

func TestCallTimeout(t *testing.T) {
	a, b := newNode(t), newNode(t)
	link(t, a, b)
	b.Handle("slow", "wait", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
		return nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.Call(ctx, b.Self(), "slow", "wait", nil); err == nil {
		t.Fatal("call outlived its deadline")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline not honoured: %v", d)
	}
}

func TestQuorumCall(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	link(t, a, b, c)
	got := make(chan peer.ID, 3)
	ok := func(n *Node) Handler {
		return func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
			got <- n.Self()
			return []byte("ok"), nil
		}
	}
	a.Handle("kv", "put", ok(a))
	b.Handle("kv", "put", ok(b))
	c.Handle("kv", "put", func(ctx context.Context, from peer.ID, p []byte) ([]byte, error) {
		return nil, errors.New("disk full")
	})
	peers := []peer.ID{a.Self(), b.Self(), c.Self()}
	ctx := context.Background()
	replies, err := a.QuorumCall(ctx, ctx, peers, 2, "kv", "put", []byte("v"))
	if err != nil || len(replies) != 2 {
		t.Fatalf("quorum 2 of 3 with one failure: %d replies, %v", len(replies), err)
	}
	_, err = a.QuorumCall(ctx, ctx, peers, 3, "kv", "put", []byte("v"))
	if !errors.Is(err, ErrQuorum) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("quorum 3 of 3 with one failure: %v", err)
	}
	if _, err := a.QuorumCall(ctx, ctx, peers[:1], 2, "kv", "put", nil); !errors.Is(err, ErrQuorum) {
		t.Fatalf("need > peers: %v", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	cases := []frame{
		{kind: kindRequest, method: "put", payload: []byte("abc")},
		{kind: kindOK},
		{kind: kindError, method: "not-found", payload: []byte("no such entry")},
	}
	for _, f := range cases {
		var buf bytes.Buffer
		if err := writeFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
		g, err := readFrame(bufio.NewReader(&buf))
		if err != nil || g.kind != f.kind || g.method != f.method || !bytes.Equal(g.payload, f.payload) {
			t.Fatalf("round trip %+v -> %+v %v", f, g, err)
		}
	}
	if err := writeFrame(&bytes.Buffer{}, frame{kind: kindOK, method: strings.Repeat("m", 200)}); !errors.Is(err, ErrFrame) {
		t.Fatalf("oversized method accepted: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, frame{kind: kindRequest, method: "put", payload: []byte("abc")})
	f.Add(buf.Bytes())
	f.Add([]byte{1, 2, 0, 0})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := writeFrame(&out, fr); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := readFrame(bufio.NewReader(&out))
		if err != nil || again.kind != fr.kind || again.method != fr.method || !bytes.Equal(again.payload, fr.payload) {
			t.Fatalf("decode(encode(frame)) differs: %v", err)
		}
	})
}
