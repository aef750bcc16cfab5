package labe2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/natpunch"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The child side: the test binary re-executed in a lab namespace as a p2p node.

const (
	roleEnv     = "LABE2E_ROLE"
	roleP2PNode = "p2pnode"
	confEnv     = "LABE2E_P2P_CONFIG"
	blobProto   = "/entrepot-lab/blob/1"
	ctlSocket   = "ctl.sock"
)

// nodeConf configures a p2p node child.
type nodeConf struct {
	Dir          string   `json:"dir"`
	Listen       string   `json:"listen"`
	Bootstrap    []string `json:"bootstrap"`
	Secret       string   `json:"secret"`
	NAT          bool     `json:"nat"`
	NoHolePunch  bool     `json:"no_hole_punch"`
	CheckSeconds int      `json:"check_seconds"` // natpunch CheckInterval
}

// nodeStatus is what a child reports on GET /status.
type nodeStatus struct {
	ID    string            `json:"id"`
	Addrs []string          `json:"addrs"`
	Reach p2p.ReachStatus   `json:"reach"`
	Peers []p2p.PeerStatus  `json:"peers"`
	NAT   p2p.NATStatus     `json:"nat"`
	Lab   bool              `json:"lab_build"`
	Start time.Time         `json:"start"`
	Extra map[string]string `json:"extra,omitempty"`
}

// sendResult is the answer of POST /send.
type sendResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Intact  bool    `json:"intact"`
	Via     string  `json:"via"`
	Error   string  `json:"error,omitempty"`
}

func p2pNodeMain() int {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var conf nodeConf
	if err := json.Unmarshal([]byte(os.Getenv(confEnv)), &conf); err != nil {
		log.Error("config", "err", err)
		return 2
	}
	secret, err := p2p.ParseSecret(conf.Secret)
	if err != nil {
		log.Error("secret", "err", err)
		return 2
	}
	cfg := p2p.Config{
		IdentityFile: filepath.Join(conf.Dir, "node.key"), PeerListFile: filepath.Join(conf.Dir, "peers.json"),
		Secret: secret, ListenAddrs: []string{conf.Listen}, Bootstrap: conf.Bootstrap, MDNS: true,
		PingInterval: time.Second, ReconnectInterval: 2 * time.Second, ReachabilityInterval: time.Second,
		DisableHolePunching: conf.NoHolePunch, Logger: log,
	}
	if conf.NAT {
		cfg.NAT = &natpunch.Config{CheckInterval: time.Duration(conf.CheckSeconds) * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := p2p.New(ctx, cfg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	h.Libp2p().SetStreamHandler(blobProto, func(s network.Stream) {
		defer s.Close()
		sum := sha256.New()
		if _, err := io.Copy(sum, s); err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write(sum.Sum(nil))
	})
	runDone := make(chan struct{})
	go func() { _ = h.Run(ctx); close(runDone) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := nodeStatus{ID: h.ID().String(), Addrs: h.Addrs(), Reach: h.Reachability(), Peers: h.Peers(),
			NAT: h.NATStatus(), Lab: p2p.LabBuild, Start: start}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /connect", func(w http.ResponseWriter, r *http.Request) {
		id, err := peer.Decode(r.URL.Query().Get("peer"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cctx, ccancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer ccancel()
		if err := h.FindAndConnect(cctx, id); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /send", func(w http.ResponseWriter, r *http.Request) {
		id, err := peer.Decode(r.URL.Query().Get("peer"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		size, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		_ = json.NewEncoder(w).Encode(sendBlob(r.Context(), h, id, size))
	})
	sock := filepath.Join(conf.Dir, ctlSocket)
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Error("control socket", "err", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	t0 := time.Now()
	_ = srv.Close()
	cancel()
	<-runDone
	err = h.Close()
	log.Info("stopped", "took", time.Since(t0), "err", err)
	if err != nil {
		return 1
	}
	return 0
}

// sendBlob sends size pseudo-random bytes to id and checks the digest it returns.
func sendBlob(ctx context.Context, h *p2p.Host, id peer.ID, size int64) sendResult {
	res := sendResult{Bytes: size}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now() // a request's latency includes opening its stream
	s, err := h.Libp2p().NewStream(ctx, id, blobProto)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer s.Close()
	res.Via = p2p.ViaDirect
	if _, err := s.Conn().RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err == nil {
		res.Via = p2p.ViaRelayed
	}
	src := rand.New(rand.NewPCG(uint64(size), 42))
	sum := sha256.New()
	buf := make([]byte, 256<<10)
	for left := size; left > 0; {
		n := int64(len(buf))
		if n > left {
			n = left
		}
		for i := 0; i < int(n); i += 8 {
			v := src.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		sum.Write(buf[:n])
		if _, err := s.Write(buf[:n]); err != nil {
			res.Error = fmt.Sprintf("write after %d bytes: %v", size-left, err)
			return res
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		res.Error = err.Error()
		return res
	}
	got, err := io.ReadAll(io.LimitReader(s, 64))
	res.Seconds = time.Since(t0).Seconds()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Intact = hex.EncodeToString(got) == hex.EncodeToString(sum.Sum(nil))
	return res
}
