package model

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes the test binary act as the writer process that
// TestCrashRecovery kills.
const crashChildEnv = "ENTREPOT_MODEL_CRASH_CHILD"

func crashCfg(dir string) Config {
	return Config{MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"),
		BlockSize: testBlock, CompressionLevel: 1, GCDelay: time.Hour}
}

// runCrashChild writes objects from 4 goroutines, printing every
// acknowledged write, until it is killed.
func runCrashChild(dir, round string) {
	ctx := context.Background()
	s, err := Open(ctx, crashCfg(dir))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(f string, a ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, f+"\n", a...)
		mu.Unlock()
	}
	sizes := []int{10, 4096, 5000, testBlock, 3*testBlock + 7}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("%s/g%d/%05d", round, g, i)
				data := randBytes(uint64(i*7+g), sizes[(i+g)%len(sizes)])
				if _, err := s.PutObject(ctx, PutInput{Bucket: "crash", Key: key, Body: bytes.NewReader(data), Sums: sumsOf(data)}); err != nil {
					say("error %v", err)
					return
				}
				say("put %s %s", key, md5hex(data))
				if i%5 == 4 {
					old := fmt.Sprintf("%s/g%d/%05d", round, g, i-2)
					say("deleting %s", old)
					if err := s.DeleteObject(ctx, "crash", old); err != nil {
						say("error %v", err)
						return
					}
					say("del %s", old)
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(1)
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		round, _ := os.LookupEnv(crashChildEnv + "_ROUND")
		runCrashChild(dir, round)
	}
	os.Exit(m.Run())
}

// TestCrashRecovery SIGKILLs a writing process at random instants and checks
// that every acknowledged write survived, deletions stuck, and no object is
// partial: everything listed reads back whole with its ETag.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test spawns processes; skipped with -short")
	}
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, crashCfg(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket(ctx, "", "crash"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 3 {
		name := fmt.Sprintf("r%d", round)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashChildEnv+"_ROUND="+name)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(400+rng.IntN(1200)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		acked := map[string]string{} // key -> md5, "" once deleted
		maybe := map[string]bool{}   // delete in flight: either state is fine
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "put":
				acked[f[1]] = f[2]
			case len(f) == 2 && f[0] == "deleting":
				maybe[f[1]] = true
			case len(f) == 2 && f[0] == "del":
				acked[f[1]], maybe[f[1]] = "", false
			case len(f) > 0 && f[0] == "error":
				t.Fatalf("child: %s", sc.Text())
			}
		}
		if len(acked) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		s, err := Open(ctx, crashCfg(dir))
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		for key, sum := range acked {
			m, err := s.HeadObject(ctx, "crash", key)
			switch {
			case maybe[key]:
			case sum == "" && err == nil:
				t.Errorf("round %d: deleted %s is back", round, key)
			case sum != "" && err != nil:
				t.Errorf("round %d: acknowledged %s lost: %v", round, key, err)
			case sum != "" && m.ETag != sum:
				t.Errorf("round %d: %s has ETag %s, want %s", round, key, m.ETag, sum)
			}
		}
		// Nothing listed is partial, before and after every cleanup job ran.
		verifyAll := func() int {
			listed := 0
			in := ListInput{Bucket: "crash", MaxKeys: 1000}
			for {
				r, err := s.ListObjects(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range r.Objects {
					listed++
					rd, err := s.OpenObject(ctx, m, 0, -1)
					if err != nil {
						t.Fatalf("open listed %s: %v", m.Key, err)
					}
					h := md5.New()
					n, err := io.Copy(h, rd)
					rd.Close()
					if err != nil || n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.ETag {
						t.Fatalf("listed %s is partial or corrupt: %d/%d bytes, %v", m.Key, n, m.Size, err)
					}
				}
				if !r.IsTruncated {
					break
				}
				in.Marker = r.NextMarker
			}
			return listed
		}
		listed := verifyAll()
		if _, err := s.ScanOrphans(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RepairVersions(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RunGC(ctx, time.Now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if again := verifyAll(); again != listed {
			t.Fatalf("cleanup changed the listing: %d -> %d objects", listed, again)
		}
		t.Logf("round %d: %d writes acknowledged, %d objects listed", round, len(acked), listed)
		s.Close()
	}
}
