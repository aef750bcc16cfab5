package labe2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/netlab"
)

// p2pProc is a p2p node child running in a lab namespace.
type p2pProc struct {
	name  string
	host  *netlab.Host
	conf  nodeConf
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	start time.Time
	http  *http.Client
	id    string
}

func startP2P(t *testing.T, host *netlab.Host, conf nodeConf) *p2pProc {
	t.Helper()
	if conf.Dir == "" {
		conf.Dir = filepath.Join(t.TempDir(), host.Name)
	}
	if err := os.MkdirAll(conf.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if conf.Listen == "" {
		conf.Listen = "/ip4/0.0.0.0/tcp/3901"
	}
	b, _ := json.Marshal(conf)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(conf.Dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := host.Command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(cmd.Env, roleEnv+"="+roleP2PNode, confEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &p2pProc{name: host.Name, host: host, conf: conf, cmd: cmd, done: make(chan struct{}), start: time.Now()}
	sock := filepath.Join(conf.Dir, ctlSocket)
	p.http = &http.Client{Timeout: 6 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() || os.Getenv("LABE2E_LOGS") != "" {
			b, _ := os.ReadFile(filepath.Join(conf.Dir, "node.log"))
			t.Logf("--- %s log tail ---\n%s", p.name, Tail(string(b), 40))
		}
	})
	WaitFor(t, p.name+" control socket", 30*time.Second, func() bool {
		st, err := p.status()
		if err == nil {
			p.id = st.ID
		}
		return err == nil
	})
	return p
}

func (p *p2pProc) status() (nodeStatus, error) {
	var st nodeStatus
	resp, err := p.http.Get("http://node/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (p *p2pProc) post(path string, q url.Values) ([]byte, error) {
	resp, err := p.http.Post("http://node"+path+"?"+q.Encode(), "text/plain", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}

func (p *p2pProc) connect(id string) error {
	_, err := p.post("/connect", url.Values{"peer": {id}})
	return err
}

func (p *p2pProc) send(id string, n int64) (sendResult, error) {
	var r sendResult
	b, err := p.post("/send", url.Values{"peer": {id}, "bytes": {fmt.Sprint(n)}})
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, fmt.Errorf("send: %s", r.Error)
	}
	return r, nil
}

var stopMu sync.Mutex

// stop sends SIGTERM and waits; it returns how long the process took to exit.
func (p *p2pProc) stop(timeout time.Duration) (time.Duration, error) {
	stopMu.Lock()
	defer stopMu.Unlock()
	select {
	case <-p.done:
		return 0, p.err
	default:
	}
	t0 := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(t0), p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(t0), fmt.Errorf("%s did not stop within %v", p.name, timeout)
	}
}

// peerVia returns how p reaches id ("" if not connected).
func (p *p2pProc) peerVia(id string) string {
	st, err := p.status()
	if err != nil {
		return ""
	}
	for _, ps := range st.Peers {
		if ps.ID == id {
			return ps.Via
		}
	}
	return ""
}
