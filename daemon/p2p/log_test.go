package p2p

import (
	"log/slog"
	"os"
	"testing"
)

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// testLogger logs to the test log when P2P_TEST_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("P2P_TEST_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
